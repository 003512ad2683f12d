"""`python -m mer_lightning.bench.latency`: single-image prediction latency of each model.

One call of the predict pipeline (face detection, crop, resize, forward pass; with the
predict command's defaults: BlazeFace, no margin, no enhancement, `--detector haar` for the
paper's Haar cascade with margin 0.2 and equalisation) on one photo, timed 100 times per
model after a warm-up; the median is the headline.
Nets are built from conf/model/*.yaml with random weights: latency does not depend on them.
`--ckpt shipped` (or a checkpoint path) times that trained model instead, with its own
mirror averaging: the figure a user of `predict` meets. The net runs on the engine predict
picks (`--runtime auto`: ONNX Runtime when installed; `--runtime torch` for PyTorch's figure).
The photo is a real dataset face, upscaled and padded so that the cascade finds it, or a
synthetic image when the dataset is absent (then no face is found and the whole image is
classified, as the table says).
"""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from rich.console import Console
from rich.table import Table

from mer_lightning.core.checkpoint import LoadedModel
from mer_lightning.core.models import build_net, net_config
from mer_lightning.predict.faces import build_detector, enhance, to_model_input
from mer_lightning.predict.pipeline import FacePredictor
from mer_lightning.predict.runtime import RUNTIMES, engine_name, with_runtime
from mer_lightning.predict.shipped import load_model
from mer_lightning.runs.config import CONFIG_DIR
from mer_lightning.runs.precision import cpu_has_native_bf16

MODELS = ("cnn1", "cnn2", "resnet18", "resnet18_slim")
CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
UPSCALE, BORDER = 4, 80  # an 80x80 dataset face becomes a 480x480 photo with context around it
# Per detector: the predict command's defaults (blazeface) and the paper's pipeline (haar).
SETTINGS = {
    "blazeface": {"margin": 0.0, "enhance": {"enabled": False}, "min_crop": 80, "dataset_size": 80},
    "haar": {
        "margin": 0.2,
        "enhance": {"enabled": True, "method": "equalize"},
        "min_crop": 0,
        "dataset_size": None,
    },
}


def compose_train_config(overrides: list[str]):
    """conf/train.yaml composed as `python -m mer_lightning` would, without a run."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def random_model(name: str, image_size: int) -> LoadedModel:
    """The net of conf/model/<name>.yaml with random weights, in eval mode."""
    cfg = compose_train_config([f"model={name}", f"data.image_size={image_size}"])
    arch = net_config(cfg.model, len(CLASSES))
    return LoadedModel(
        net=build_net(arch).eval(),
        class_names=list(CLASSES),
        image_size=image_size,
        mean=tuple(cfg.data.mean),
        std=tuple(cfg.data.std),
        arch=arch,
    )


def bench_photo(image: str | None) -> tuple[np.ndarray, str]:
    """The photo to time: a given file, else an upscaled dataset face, else a synthetic one."""
    if image is not None:
        photo = cv2.imread(image)
        if photo is None:
            raise SystemExit(f"--image {image} is not an image OpenCV can read")
        return photo, image
    root = Path(str(compose_train_config([]).data.root)).expanduser()
    faces = sorted((root / "test").glob("*/*.jpg"))
    if faces:
        face = cv2.imread(str(faces[0]))
        big = cv2.resize(face, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        padded = cv2.copyMakeBorder(big, *(BORDER,) * 4, cv2.BORDER_REPLICATE)
        return padded, f"{faces[0]} upscaled x{UPSCALE} with a {BORDER}px border"
    side = 80 * UPSCALE + 2 * BORDER
    gradient = np.linspace(0, 255, side, dtype=np.float32)
    synthetic = np.stack([np.add.outer(gradient, gradient) / 2] * 3, axis=-1).astype(np.uint8)
    return synthetic, f"synthetic {side}x{side} gradient (dataset not found at {root})"


def timed_ms(call: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    """Wall time of each of `runs` calls in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def measure(
    name: str,
    model: LoadedModel,
    photo: np.ndarray,
    runs: int,
    warmup: int,
    kind: str = "blazeface",
    runtime: str = "auto",
) -> dict:
    """Median (and p90) latency of the whole pipeline, and of detection and forward alone,
    with the net run by `runtime` as predict runs it."""
    parameters = sum(p.numel() for p in model.net.parameters())
    model = with_runtime(model, runtime)
    image_size = model.image_size
    detector = build_detector({"detector": kind})
    settings = SETTINGS[kind]
    predictor = FacePredictor(
        model,
        detector,
        margin=settings["margin"],
        enhance_settings=settings["enhance"],
        min_crop=settings["min_crop"],
        dataset_size=settings["dataset_size"],
    )
    boxes = predictor.find_faces(photo)
    crop = boxes[0].expand(settings["margin"], photo.shape).crop(photo) if boxes else photo
    batch = to_model_input(
        [enhance(crop, settings["enhance"])], image_size, settings["dataset_size"]
    )
    total = timed_ms(lambda: predictor.predict(photo, "bench"), runs, warmup)
    return {
        "model": name,
        "detector": kind,
        "parameters": parameters,
        "runtime": engine_name(model),
        "tta_hflip": bool(model.tta_hflip),
        "faces_found": len(boxes),
        "median_ms": statistics.median(total),
        "p90_ms": float(np.percentile(total, 90)),
        "detect_median_ms": statistics.median(
            timed_ms(lambda: detector.detect(photo), runs, warmup)
        ),
        "forward_median_ms": statistics.median(
            timed_ms(lambda: model.predict_proba(batch), runs, warmup)
        ),
    }


def print_table(results: list[dict], photo_note: str, runs: int) -> None:
    """The results as a rich table."""
    table = Table(title=f"Single-image prediction latency (median of {runs} runs, CPU)")
    columns = ("model", "runtime", "parameters", "faces", "total ms", "p90 ms", "detect ms")
    for column in (*columns, "forward ms"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in results:
        table.add_row(
            row["model"],
            row["runtime"],
            f"{row['parameters']:,}",
            str(row["faces_found"]),
            f"{row['median_ms']:.2f}",
            f"{row['p90_ms']:.2f}",
            f"{row['detect_median_ms']:.2f}",
            f"{row['forward_median_ms']:.2f}",
        )
    table.caption = (
        f"photo: {photo_note}; detector: {results[0]['detector'] if results else '?'}; "
        "total = detect + crop + enhance + resize + forward; "
        f"torch threads: {torch.get_num_threads()}"
    )
    Console().print(table)


def main(argv: list[str] | None = None) -> dict:
    """Measure every model, print the table and write the JSON; returns the JSON payload."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per model")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before timing")
    parser.add_argument("--image-size", type=int, default=80, help="model input side")
    parser.add_argument("--image", default=None, help="photo to time (default: dataset face)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--detector", default="blazeface", choices=list(SETTINGS), help="face detector"
    )
    parser.add_argument(
        "--runtime", default="auto", choices=list(RUNTIMES), help="engine of the net, as predict's"
    )
    parser.add_argument(
        "--ckpt",
        default=None,
        help="time this trained model instead of random nets: a .ckpt path, or 'shipped'",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/latency.json"))
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    photo, photo_note = bench_photo(args.image)
    with torch.inference_mode():
        if args.ckpt is not None:
            trained = load_model(None if args.ckpt == "shipped" else args.ckpt)
            net_class = str(trained.arch.get("_target_", "?")).rsplit(".", 1)[-1]
            models = {f"{args.ckpt} ({net_class})": trained}
        else:
            models = {name: random_model(name, args.image_size) for name in args.models}
        results = [
            measure(name, model, photo, args.runs, args.warmup, args.detector, args.runtime)
            for name, model in models.items()
        ]
    print_table(results, photo_note, args.runs)
    payload = {
        "benchmark": "single-image prediction latency, face detection included",
        "date": datetime.now().isoformat(timespec="seconds"),
        "runs": args.runs,
        "warmup": args.warmup,
        "image_size": args.image_size,
        "detector": args.detector,
        "photo": photo_note,
        "photo_shape": list(photo.shape),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "processor": platform.processor(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    Console().print(f"written {args.out}")
    return payload


if __name__ == "__main__":
    main()
