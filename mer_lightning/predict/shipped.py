"""The model that ships with the package, so that predict works without training first.

`model/emotion_model.pt` is a checkpoint cut down to what prediction needs: the net's
weights in half precision (half the bytes, the same predictions to about 1e-3) and the
hyper-parameters `load_checkpoint` rebuilds the net from. `model/MODEL_CARD.md` beside it
says where it came from. Both are written by `python -m mer_lightning.export format=shipped
ckpt=RUN/checkpoints/BEST.ckpt` (`ship` below) from a finished training run.
"""

import json
import logging
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mer_lightning.core.checkpoint import REQUIRED_HPARAMS, LoadedModel, describe_arch
from mer_lightning.core.checkpoint import load_checkpoint as load_ckpt_file
from mer_lightning.core.errors import UserError

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parent / "model"
MODEL_FILE = "emotion_model.pt"
CARD_FILE = "MODEL_CARD.md"
MAX_BYTES = 25 * 1024 * 1024  # the repository's budget for the shipped file
OPTIONAL_HPARAMS = ("tta_hflip", "tta_shift")
SHIP_COMMAND = "python -m mer_lightning.export format=shipped ckpt=RUN/checkpoints/BEST.ckpt"
CHECK_BATCH = 16


def shipped_model_path() -> Path:
    """Where the packaged model lives (whether or not this install has one)."""
    return SHIPPED_DIR / MODEL_FILE


def load_model(ckpt: str | Path | None) -> LoadedModel:
    """The checkpoint `ckpt` names, or the shipped model when it is None.

    Without a shipped model (none has been built into this install yet) the UserError says
    how to get on: pass a checkpoint, or build the shipped file from a finished run.
    """
    if ckpt is not None and str(ckpt) != "":
        return load_ckpt_file(ckpt)
    path = shipped_model_path()
    if not path.is_file():
        raise UserError(
            f"no trained model ships with this install ({path} is absent): pass ckpt=PATH to "
            "a training run's .ckpt (named in its metrics.json), or build the shipped model "
            f"from a finished run with `{SHIP_COMMAND}`"
        )
    return load_ckpt_file(path)


def run_dir_of(ckpt: Path) -> Path | None:
    """The training run dir a checkpoint belongs to (it holds metrics.json), if any."""
    for folder in (ckpt.parent.parent, ckpt.parent):
        if (folder / "metrics.json").is_file():
            return folder
    return None


def shipped_contents(ckpt: Path, tta_hflip: bool | None = None) -> dict[str, Any]:
    """The checkpoint reduced to prediction's needs, floating-point weights in float16;
    mirror averaging as the run tested it, or as `tta_hflip` says."""
    model = load_ckpt_file(ckpt)  # validates the file and its arch before anything is copied
    hparams = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    kept = {k: hparams[k] for k in (*REQUIRED_HPARAMS, *OPTIONAL_HPARAMS) if k in hparams}
    if tta_hflip is not None:
        kept["tta_hflip"] = bool(tta_hflip)
    state = {
        f"net.{key}": value.half() if value.is_floating_point() else value
        for key, value in model.net.state_dict().items()
    }
    return {"hyper_parameters": kept, "state_dict": state}


def half_precision_gap(reference: LoadedModel, shipped: LoadedModel, seed: int = 0) -> float:
    """Largest |probability difference| of the full- and half-precision weights on random
    faces; a sanity check written into the card."""
    size = reference.image_size
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (CHECK_BATCH, 3, size, size), generator=generator)
    images = images.to(torch.uint8)
    gap = reference.predict_proba(images) - shipped.predict_proba(images)
    return float(gap.abs().max())


def retest_metrics(run_dir: Path | None, overrides: set[str]) -> Path | None:
    """The metrics.json of the run's re-test with exactly `overrides`
    (`python -m mer_lightning.evaluate RUN_DIR ...`), if it was made."""
    if run_dir is None:
        return None
    for path in sorted(run_dir.glob("evaluate/*/metrics.json")):
        if set(path.parent.name.split(",")) == overrides:
            return path
    return None


def _dedup_accuracy(
    run_dir: Path | None, metrics: dict[str, Any], views: set[str]
) -> tuple[Any, str]:
    """Test accuracy on the deduplicated test split (with the shipped views) and where it
    comes from."""
    if metrics.get("data", {}).get("dedup"):
        return metrics.get("test_acc"), "the run itself trained and tested with data.dedup=true"
    path = retest_metrics(run_dir, {"data.dedup=true", *views})
    if path is not None:
        return json.loads(path.read_text()).get("test_acc"), str(path.relative_to(run_dir))
    return None, (
        "not measured yet: run `python -m mer_lightning.evaluate RUN_DIR "
        f"{' '.join(sorted({'data.dedup=true', *views}))}`, then ship again"
    )


Figures = tuple[dict[str, Any], set[str], str]  # metrics, the re-test's overrides, its file


def _figures(run_dir: Path | None, tested_hflip: bool, shipped_hflip: bool) -> Figures:
    """The results the card reports for the shipped views: the run's own metrics.json, or
    its one-view (or mirrored) re-test when the shipped model averages otherwise than the
    run's validation and test did (`tested_hflip`)."""
    metrics = json.loads((run_dir / "metrics.json").read_text()) if run_dir else {}
    if run_dir is None or tested_hflip == shipped_hflip:
        return metrics, set(), "metrics.json"
    views = {f"module.tta_hflip={str(shipped_hflip).lower()}"}
    path = retest_metrics(run_dir, views)
    if path is None:
        raise UserError(
            f"the shipped model would run with tta_hflip={str(shipped_hflip).lower()}, "
            f"which run {run_dir} was not tested with: run `python -m mer_lightning.evaluate "
            f"{run_dir} {' '.join(views)}`, then ship again"
        )
    return json.loads(path.read_text()), views, str(path.relative_to(run_dir))


def _percent(value: Any) -> str:
    return f"{100 * float(value):.2f} %" if isinstance(value, int | float) else "not measured"


def model_card(ckpt: Path, model: LoadedModel, gap: float, size: int, figures: Figures) -> str:
    """MODEL_CARD.md: data, recipe and command, test and dedup accuracy, per-class F1, limits,
    read from the run's metrics.json and .hydra/overrides.yaml."""
    run_dir = run_dir_of(ckpt)
    metrics, views, source = figures
    overrides_file = run_dir / ".hydra" / "overrides.yaml" if run_dir else None
    overrides = (
        list(OmegaConf.to_container(OmegaConf.load(overrides_file)) or [])
        if overrides_file and overrides_file.is_file()
        else None
    )
    command = (
        "python -m mer_lightning " + " ".join(overrides)
        if overrides is not None
        else "unknown (the run's .hydra/overrides.yaml was not found)"
    )
    dedup, dedup_source = _dedup_accuracy(run_dir, metrics, views)
    shipped_views = f" tta_hflip={str(model.tta_hflip).lower()}" if views else ""
    per_class = metrics.get("per_class") or {}
    rows = "\n".join(
        f"| {name} | {row.get('precision', 0):.2f} | {row.get('recall', 0):.2f} | "
        f"{row.get('f1', 0):.2f} | {int(row.get('support', 0))} |"
        for name, row in per_class.items()
    )
    data = metrics.get("data", {})
    return f"""# Model card: the emotion model shipped with mer_lightning

Written by `{SHIP_COMMAND}{shipped_views}` on {date.today().isoformat()};
do not edit by hand, ship again.

## What it is
- Net: `{describe_arch(model.arch)}`, {sum(p.numel() for p in model.net.parameters()):,} \
parameters, weights stored in float16 ({size / 1e6:.2f} MB); largest probability change from \
the run's float32 weights on random faces: {gap:.1e}.
- Input: RGB face crops resized to {model.image_size}x{model.image_size}, \
mean {list(model.mean)}, std {list(model.std)}; mirror averaging: {model.tta_hflip}, \
shift averaging: {model.tta_shift} px.
- Classes: {", ".join(model.class_names)}.
- Model name in its run: {metrics.get("model", "unknown")}, seed {metrics.get("seed", "unknown")}.

## Data
The Kaggle "Micro Expressions" set: 80x80 face crops that its author cut from scraped photos
with MediaPipe's short-range BlazeFace box (no margin), dropping crops under 80 px. The run's
data summary: `{json.dumps(data, sort_keys=True)[:600]}`.

## Recipe
Trained by

```bash
{command}
```

(source checkpoint: `{ckpt.name}` of run `{run_dir.name if run_dir else "unknown"}`).

## Results (test split of the Kaggle set)
| figure | value |
|---|---:|
| test accuracy | {_percent(metrics.get("test_acc"))} |
| test accuracy without the test images that are copies of train images (dedup) | \
{_percent(dedup)} |
| test macro F1 | {_percent(metrics.get("test_f1_macro"))} |
| train accuracy | {_percent(metrics.get("train_acc"))} |

Figures from the run's `{source}`; dedup figure: {dedup_source}.
Paper to beat: CNN1 82.53 % test accuracy, macro F1 0.79.

| class | precision | recall | F1 | support |
|---|---:|---:|---:|---:|
{rows or "| (the run's metrics.json has no per-class table) | | | | |"}

## Known limits
- Trained on posed and candid expressions in web photos, not on video micro-expressions:
  it labels the visible expression of one frame.
- It expects crops made as the dataset's: `python -m mer_lightning.predict` does this by
  default (BlazeFace short range, no margin, no enhancement, faces under 80 px left out);
  other framings or contrast enhancement cost accuracy (docs/guide/predict.md has the table).
- BlazeFace short range finds frontal faces within about 2 m of the camera; profiles and
  small faces in group photos are missed.
- Seven classes only; fear and disgust are the weakest (see F1 above). It says what a face
  shows, not what a person feels: do not use it for decisions about people.
"""


def ship(ckpt: str | Path, out_dir: Path, tta_hflip: bool | None = None) -> dict[str, Any]:
    """Write the shipped model file and its card into `out_dir` from a run's checkpoint,
    mirror averaging as the run tested it or as `tta_hflip` says (false: one view, about
    twice as fast; the card then reports the run's one-view re-test)."""
    ckpt = Path(ckpt).expanduser()
    reference = load_ckpt_file(ckpt)
    tested_hflip = reference.tta_hflip
    if tta_hflip is not None:
        reference = replace(reference, tta_hflip=bool(tta_hflip))
    figures = _figures(run_dir_of(ckpt), tested_hflip, reference.tta_hflip)  # before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / MODEL_FILE
    partial = target.with_suffix(".pt.partial")
    torch.save(shipped_contents(ckpt, tta_hflip), partial)
    size = partial.stat().st_size
    if size > MAX_BYTES:
        partial.unlink()
        raise UserError(
            f"{ckpt} gives a {size / 2**20:.1f} MiB shipped file, over the {MAX_BYTES // 2**20} "
            "MiB budget; ship a smaller net (e.g. a distilled student) instead"
        )
    shipped = load_ckpt_file(partial)
    gap = half_precision_gap(reference, shipped)
    partial.replace(target)
    card = out_dir / CARD_FILE
    card.write_text(model_card(ckpt, reference, gap, size, figures))
    log.info("shipped %s as %s (%.2f MB) with %s", ckpt, target, size / 1e6, card)
    return {"model": str(target), "card": str(card), "bytes": size, "max_abs_difference": gap}
