"""`python -m mer_lightning.predict.devset root=DEV_SET [ckpt=PATH]`: how each way of finding
and cropping faces scores on labelled photos that are not face crops.

DEV_SET holds one folder per class named as the model's classes (the Taiwanese expression
photos of ../shared/datasets/taiwanese-expressions-dev are laid out so). Each setting of the
pipeline (detector, margin, enhancement, crop rules) predicts every photo; a photo's answer is
its largest face, or the whole photo where no face is found, as `predict` does. Per setting:
detection rate, accuracy and macro F1 over all photos (torchmetrics), accuracy over the photos
with a face. Printed as a table and written to devset.{json,md} in `out`. A development set:
never train or tune a classifier's weights on it.
"""

import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from mer_lightning.core.errors import UserError
from mer_lightning.predict.box import Box
from mer_lightning.predict.faces import build_detector
from mer_lightning.predict.inputs import UnreadableImage, find_files, read_image
from mer_lightning.predict.pipeline import FacePredictor
from mer_lightning.predict.runtime import engine_name, load_for_prediction
from mer_lightning.runs.console import exit_on_user_error

log = logging.getLogger(__name__)

USAGE = (
    "python -m mer_lightning.predict.devset root=DEV_SET [ckpt=PATH] [out=DIR] [threads=N] "
    "[runtime=auto|onnx|torch]"
)
DEFAULTS = {"root": None, "ckpt": None, "out": None, "threads": None, "runtime": "auto"}
NO_ENHANCE = {"enabled": False}
EQUALIZE = {"enabled": True, "method": "equalize"}
CLAHE = {"enabled": True, "method": "clahe", "clip_limit": 2.0, "tile_grid": 8}
DATASET_CROP = {"min_crop": 80, "dataset_size": 80}  # the dataset's rules: drop < 80 px, 80x80
STRAIGHT = {"min_crop": 0, "dataset_size": None}  # the old pipeline: straight to the model input


@dataclass(frozen=True)
class Setting:
    """One way of finding, cropping and enhancing faces."""

    name: str
    detector: str
    margin: float
    enhance: dict[str, Any]
    crop: dict[str, Any]


SETTINGS = (
    Setting("old default: haar, margin 0.2, equalize", "haar", 0.2, EQUALIZE, STRAIGHT),
    Setting("haar, margin 0.2, no enhancement", "haar", 0.2, NO_ENHANCE, STRAIGHT),
    Setting("haar, margin 0, no enhancement, dataset crop", "haar", 0.0, NO_ENHANCE, DATASET_CROP),
    Setting("blazeface, margin 0.2, equalize", "blazeface", 0.2, EQUALIZE, STRAIGHT),
    Setting("blazeface, margin 0.2, no enhancement", "blazeface", 0.2, NO_ENHANCE, DATASET_CROP),
    Setting("blazeface, margin 0.1, no enhancement", "blazeface", 0.1, NO_ENHANCE, DATASET_CROP),
    Setting("blazeface, margin 0, equalize", "blazeface", 0.0, EQUALIZE, DATASET_CROP),
    Setting("blazeface, margin 0, clahe", "blazeface", 0.0, CLAHE, DATASET_CROP),
    Setting("blazeface, margin 0, no enhancement, straight resize", "blazeface", 0.0, NO_ENHANCE,
            STRAIGHT),
    Setting("new default: blazeface, margin 0, no enhancement, dataset crop", "blazeface", 0.0,
            NO_ENHANCE, DATASET_CROP),
)  # fmt: skip


class CachedDetector:
    """A detector whose boxes are remembered per photo, so settings that share a detector
    run it once per photo."""

    def __init__(self, detector) -> None:
        self.detector = detector
        self.boxes: dict[int, list[Box]] = {}

    def detect(self, image: np.ndarray) -> list[Box]:
        key = id(image)
        if key not in self.boxes:
            self.boxes[key] = self.detector.detect(image)
        return self.boxes[key]


def labelled_photos(root: Path, class_names: list[str]) -> tuple[list[Path], list[int]]:
    """The photos under root/<class>/ and their class indices in the model's order."""
    if not root.is_dir():
        raise UserError(f"root={root} is not a folder; {USAGE}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name not in class_names]
    if not folders or unknown:
        raise UserError(
            f"root={root} must hold one folder per class named as the model's classes "
            f"{class_names}; found {unknown or 'no folders'}"
        )
    paths, labels = [], []
    for folder in folders:
        for path in find_files(folder):
            paths.append(path)
            labels.append(class_names.index(folder.name))
    return paths, labels


def score(
    predictors: dict[str, FacePredictor], photos: list[np.ndarray], labels: list[int], classes: int
) -> list[dict[str, Any]]:
    """Detection rate, accuracy, macro F1 and accuracy on detected photos for each setting."""
    target = torch.tensor(labels)
    rows = []
    for name, predictor in predictors.items():
        predicted, detected = [], []
        for image in photos:
            first = predictor.predict(image, "")[0]  # largest face, or the whole photo
            predicted.append(predictor.model.class_names.index(first.label))
            detected.append(first.face_detected)
        preds, found = torch.tensor(predicted), torch.tensor(detected)
        accuracy = MulticlassAccuracy(classes, average="micro")(preds, target)
        f1 = MulticlassF1Score(classes, average="macro")(preds, target)
        on_faces = (
            float(MulticlassAccuracy(classes, average="micro")(preds[found], target[found]))
            if found.any()
            else None
        )
        rows.append(
            {
                "setting": name,
                "detection_rate": float(found.float().mean()),
                "accuracy": float(accuracy),
                "f1_macro": float(f1),
                "accuracy_on_detected": on_faces,
                "photos": len(photos),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], header: dict[str, Any]) -> str:
    """The results as a markdown table, ready for docs/guide/predict.md."""
    lines = [
        f"Dev set: {header['photos']} photos of {header['root_name']}; model: {header['model']}.",
        "",
        "| setting | faces found | accuracy | macro F1 | accuracy where a face was found |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        detected = row["accuracy_on_detected"]
        lines.append(
            f"| {row['setting']} | {row['detection_rate']:.1%} | {row['accuracy']:.1%} | "
            f"{row['f1_macro']:.3f} | {'-' if detected is None else f'{detected:.1%}'} |"
        )
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> dict[str, Any]:
    """Score every setting on the dev set; print the table, write devset.{json,md}."""
    cfg = OmegaConf.merge(DEFAULTS, OmegaConf.from_cli(argv))
    if cfg.root is None:
        raise UserError(f"root is required: {USAGE}")
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    model = load_for_prediction(cfg.ckpt, str(cfg.runtime))
    root = Path(str(cfg.root)).expanduser()
    paths, labels = labelled_photos(root, model.class_names)
    photos, kept, skipped = [], [], []
    for path, label in zip(paths, labels, strict=True):
        try:
            photos.append(read_image(path))
            kept.append(label)
        except UnreadableImage as error:
            skipped.append((str(path), str(error)))
    if not photos:
        raise UserError(f"root={root} holds no readable photos")
    detectors = {kind: CachedDetector(build_detector({"detector": kind})) for kind in ("haar",
                 "blazeface")}  # fmt: skip
    predictors = {
        s.name: FacePredictor(model, detectors[s.detector], s.margin, s.enhance, **s.crop)
        for s in SETTINGS
    }
    rows = score(predictors, photos, kept, len(model.class_names))
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(str(cfg.out)).expanduser() if cfg.out else Path("outputs/devset") / stamp
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "root": str(root),
        "root_name": root.name,
        "model": str(model.path),
        "runtime": engine_name(model),
        "photos": len(photos),
        "skipped": [{"file": f, "reason": r} for f, r in skipped],
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    payload = {**header, "results": rows}
    (out / "devset.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "devset.md").write_text(markdown(rows, header))
    print_table(rows, header)
    Console().print(f"written {out / 'devset.json'} and {out / 'devset.md'}", highlight=False)
    return payload


def print_table(rows: list[dict[str, Any]], header: dict[str, Any]) -> None:
    """The results as a rich table."""
    table = Table(title=f"Prediction pipeline on {header['root_name']} ({header['photos']} photos)")
    for column in ("setting", "faces found", "accuracy", "macro F1", "acc. on faces"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        detected = row["accuracy_on_detected"]
        table.add_row(
            row["setting"],
            f"{row['detection_rate']:.1%}",
            f"{row['accuracy']:.1%}",
            f"{row['f1_macro']:.3f}",
            "-" if detected is None else f"{detected:.1%}",
        )
    table.caption = f"model: {header['model']}; a photo without a face is classified whole"
    Console().print(table)
    for item in header["skipped"]:
        Console().print(f"[yellow]skipped[/] {item['file']}: {item['reason']}", highlight=False)


def main() -> None:
    """The command-line entry: a user mistake prints one line and exits with status 2."""
    logging.basicConfig(level=logging.WARNING)
    with exit_on_user_error():
        run(sys.argv[1:])


if __name__ == "__main__":
    main()
