"""`python -m mer_lightning.export ckpt=PATH format=onnx|torchscript|shipped`: the net for other
runtimes, or the model that ships with the package.

format=shipped writes the half-precision model file and its model card into the package
(mer_lightning/predict/model/, or `ship_dir`), where `python -m mer_lightning.predict` without
ckpt= finds it; see mer_lightning/predict/shipped.py.

The exported model is the bare net: it takes normalised float32 RGB images (N, 3, S, S)
and returns class logits. The preprocessing it expects (image size, mean, std, class
order) is written beside it as preprocessing.json and embedded in the file itself (ONNX
metadata `mer_lightning.preprocessing`; TorchScript extra file `preprocessing.json`).
"""

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mer_lightning.core.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.predict.runtime import INPUT_NAME, OUTPUT_NAME, onnx_bytes
from mer_lightning.runs.config import CONFIG_DIR
from mer_lightning.runs.console import exit_on_user_error

log = logging.getLogger(__name__)

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
SHIPPED = "shipped"
METADATA_KEY = "mer_lightning.preprocessing"
CHECK_BATCH = 4


def preprocessing(model: LoadedModel) -> dict[str, Any]:
    """What a runtime must do to an image before the exported net sees it."""
    size = model.image_size
    return {
        "input": f"float32 tensor named '{INPUT_NAME}', shape (N, 3, {size}, {size}), NCHW",
        "steps": [
            "crop the face with MediaPipe's short-range BlazeFace box, no margin, as the "
            "training faces were cut (or take the whole image of a face crop)",
            "no contrast enhancement (the training faces had none)",
            f"resize to 80x80 (bilinear), as the dataset's crops were, then to {size}x{size}; "
            "channels in RGB order",
            "scale pixels to [0, 1] (divide by 255)",
            "subtract mean and divide by std, per channel",
        ],
        "image_size": size,
        "color_order": "RGB",
        "mean": list(model.mean),
        "std": list(model.std),
        "output": f"'{OUTPUT_NAME}' (N, {len(model.class_names)}): logits in class_names order; "
        "softmax gives probabilities",
        "tta_hflip": model.tta_hflip,
        "tta_shift": model.tta_shift,
        "postprocessing": postprocessing(model.tta_hflip, model.tta_shift),
        "class_names": model.class_names,
        "arch": model.arch,
    }


def postprocessing(hflip: bool, shift: int) -> str:
    """What a runtime does with the net's logits to score an image as the run's val/test did."""
    mirror = "(module.tta_hflip=true)"
    moved = (
        f"the image moved by {shift} pixels up, down, left and right (reflect-padded back to "
        f"its size; module.tta_shift={shift})"
    )
    if shift and hflip:
        views = f"the image, of {moved}, and of the horizontal mirror of each of the five {mirror}"
    elif shift:
        views = f"the image and of {moved}"
    elif hflip:
        views = f"the image and of its horizontal mirror {mirror}"
    else:
        return "softmax"
    return f"average the logits of {views}, then softmax"


def export_onnx(model: LoadedModel, path: Path, opset: int) -> None:
    """ONNX with a dynamic batch axis and the preprocessing in its metadata."""
    import onnx

    path.write_bytes(onnx_bytes(model.net, model.image_size, opset))
    exported = onnx.load(str(path))
    onnx.helper.set_model_props(exported, {METADATA_KEY: json.dumps(preprocessing(model))})
    onnx.checker.check_model(exported)
    onnx.save(exported, str(path))


def export_torchscript(model: LoadedModel, path: Path) -> None:
    """A traced TorchScript module with preprocessing.json as an extra file."""
    example = torch.zeros(1, 3, model.image_size, model.image_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        traced = torch.jit.trace(model.net, example)
        torch.jit.save(
            traced, str(path), _extra_files={"preprocessing.json": json.dumps(preprocessing(model))}
        )


def run_exported(path: Path, batch: torch.Tensor) -> torch.Tensor:
    """Logits of an exported model (by its suffix) on a normalised batch, on its own runtime."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return loaded(batch)


def export(model: LoadedModel, fmt: str, out_dir: Path, opset: int = 17) -> Path:
    """Write the model in `fmt` plus preprocessing.json into `out_dir`; returns the model file."""
    if fmt not in FORMATS:
        raise UserError(f"format={fmt} is not one of {[*FORMATS, SHIPPED]}; e.g. format=onnx")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FORMATS[fmt]
    if fmt == "onnx":
        try:
            export_onnx(model, path, opset)
        except ImportError as error:
            raise UserError(
                f"format=onnx needs the onnx package ({error}); pip install -e '.[export]'"
            ) from error
    else:
        export_torchscript(model, path)
    (out_dir / "preprocessing.json").write_text(json.dumps(preprocessing(model), indent=2) + "\n")
    return path


def check(model: LoadedModel, path: Path, tolerance: float, seed: int = 0) -> float:
    """Largest |logit difference| between PyTorch and the exported model on a random batch."""
    generator = torch.Generator().manual_seed(seed)
    size = model.image_size
    images = torch.randint(0, 256, (CHECK_BATCH, 3, size, size), generator=generator)
    batch = model.normalize(images.to(torch.uint8))
    with torch.inference_mode():
        expected = model.net(batch)
    try:
        difference = float((run_exported(path, batch) - expected).abs().max())
    except ImportError as error:
        raise UserError(
            f"checking {path} needs onnxruntime ({error}); pip install onnxruntime, "
            "or skip the check with check=false"
        ) from error
    if difference > tolerance:
        raise UserError(
            f"{path} differs from the PyTorch model by {difference:.3g} > tolerance={tolerance}; "
            "try another opset (opset=18) or format=torchscript"
        )
    return difference


def run(cfg: DictConfig) -> dict[str, Any]:
    """Export cfg.ckpt in cfg.format into the run dir, then check it against PyTorch."""
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise UserError("ckpt is required: python -m mer_lightning.export ckpt=PATH format=onnx")
    if str(cfg.format) == SHIPPED:
        from mer_lightning.predict.shipped import SHIPPED_DIR, ship

        ship_dir = cfg.get("ship_dir")
        out_dir = Path(str(ship_dir)).expanduser() if ship_dir else SHIPPED_DIR
        tta_hflip = cfg.get("tta_hflip")
        if tta_hflip not in (None, True, False):
            raise UserError(
                f"tta_hflip={tta_hflip} must be true, false, or null to keep the run's own setting"
            )
        summary = ship(cfg.ckpt, out_dir, tta_hflip)
        log.info("shipped %s: %s", cfg.ckpt, summary)
        return summary
    model = load_checkpoint(cfg.ckpt)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    path = export(model, str(cfg.format), out_dir, int(cfg.opset))
    summary: dict[str, Any] = {"model": str(path), "format": str(cfg.format)}
    if cfg.check:
        summary["max_abs_difference"] = check(model, path, float(cfg.tolerance))
    log.info("exported %s to %s (%s)", model.path, path, summary)
    return summary


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    """The command-line entry: a user mistake prints one line and exits with status 2."""
    with exit_on_user_error():
        run(cfg)


if __name__ == "__main__":
    main()
