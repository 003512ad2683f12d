"""What a prediction run leaves behind: a rich table, predictions.{csv,json}, frames.csv,
probability-over-time plots and annotated images."""

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from mer_lightning.predict.box import Box
from mer_lightning.predict.pipeline import FacePrediction

BOX_COLOUR = (0, 200, 0)  # BGR green: a detected face
WHOLE_IMAGE_COLOUR = (0, 165, 255)  # BGR orange: no face found, the whole image was classified
WRITABLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BASE_COLUMNS = ("file", "face", "face_detected", "x", "y", "width", "height")


def csv_columns(class_names: Sequence[str]) -> list[str]:
    """The CSV header: file and face box, the predicted class, then one probability per class."""
    return [*BASE_COLUMNS, "predicted", "confidence", *(f"p_{name}" for name in class_names)]


FRAME_COLUMNS = ("file", "frame", "time_s")


def frame_columns(class_names: Sequence[str]) -> list[str]:
    """frames.csv's header: the file, the frame's index and time, then as predictions.csv."""
    return [*FRAME_COLUMNS, *csv_columns(class_names)[1:]]


def csv_row(prediction: FacePrediction, class_names: Sequence[str]) -> list[Any]:
    """One face as a CSV row, in the order of csv_columns."""
    box = prediction.box
    return [
        prediction.file,
        prediction.face,
        prediction.face_detected,
        box.x,
        box.y,
        box.width,
        box.height,
        prediction.label,
        round(prediction.confidence, 6),
        *(round(prediction.probabilities[name], 6) for name in class_names),
    ]


def write_csv(
    path: Path, predictions: Sequence[FacePrediction], class_names: Sequence[str]
) -> None:
    """predictions.csv: one row per face; the header row even when nothing was predicted."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(csv_columns(class_names))
        writer.writerows(csv_row(p, class_names) for p in predictions)


def write_frames_csv(
    path: Path, predictions: Sequence[FacePrediction], class_names: Sequence[str]
) -> None:
    """frames.csv: one row per face per predicted video or camera frame, with its time."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(frame_columns(class_names))
        for p in predictions:
            time = round(p.time, 4) if p.time is not None else ""
            writer.writerow([p.file, p.frame, time, *csv_row(p, class_names)[1:]])


def probability_plot(
    path: Path, title: str, predictions: Sequence[FacePrediction], class_names: Sequence[str]
) -> Path:
    """A PNG of each class's probability over time for the largest face of each frame.

    Frames whose largest face is absent leave a gap, not a line through them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_frame: dict[int, FacePrediction] = {}
    times: dict[int, float] = {}
    for p in predictions:
        if p.frame is not None and p.face == 0:
            by_frame[p.frame] = p
        if p.frame is not None and p.time is not None:
            times[p.frame] = p.time
    frames = sorted(by_frame)
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    for name in class_names:
        ax.plot(
            [times.get(f, f) for f in frames],
            [by_frame[f].probabilities[name] for f in frames],
            label=name,
            marker="." if len(frames) < 50 else None,
        )
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def json_record(prediction: FacePrediction) -> dict[str, Any]:
    """One face as a JSON object, the box as a nested object."""
    box = prediction.box
    return {
        "file": prediction.file,
        "face": prediction.face,
        "face_detected": prediction.face_detected,
        "box": {"x": box.x, "y": box.y, "width": box.width, "height": box.height},
        "predicted": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
    }


def write_json(
    path: Path,
    predictions: Sequence[FacePrediction],
    skipped: Sequence[tuple[str, str]],
    header: dict[str, Any],
) -> None:
    """predictions.json: the run's header (checkpoint, classes, ...), faces and skipped files."""
    payload = {
        **header,
        "predictions": [json_record(p) for p in predictions],
        "skipped": [{"file": file, "reason": reason} for file, reason in skipped],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def print_report(
    predictions: Sequence[FacePrediction],
    skipped: Sequence[tuple[str, str]],
    max_rows: int,
    console: Console | None = None,
    notes: Sequence[str] = (),
) -> None:
    """A table of predictions (the first `max_rows`), then the skipped files and `notes`
    (one line each, e.g. a video's frames without a face)."""
    console = console or Console()
    table = Table(title="Predicted emotions", show_lines=False)
    timed = any(p.time is not None for p in predictions[:max_rows])
    columns = [("file", "left"), ("time s", "right")] if timed else [("file", "left")]
    for column, justify in (*columns, ("face", "right"), ("box x,y,w,h", "right")):
        table.add_column(column, justify=justify, overflow="fold")
    table.add_column("emotion")
    table.add_column("probability", justify="right")
    for prediction in predictions[:max_rows]:
        box = prediction.box
        face = str(prediction.face) if prediction.face_detected else "[yellow]none"
        time = [f"{prediction.time:.2f}" if prediction.time is not None else ""] if timed else []
        table.add_row(
            prediction.file,
            *time,
            face,
            f"{box.x},{box.y},{box.width},{box.height}",
            f"[bold]{prediction.label}",
            f"{prediction.confidence:.1%}",
        )
    caption = []
    if any(not p.face_detected for p in predictions[:max_rows]):
        caption.append("face none: no face found, the whole image was classified")
    if len(predictions) > max_rows:
        caption.append(f"first {max_rows} of {len(predictions)} rows; all are in the CSV files")
    table.caption = "\n".join(caption) or None
    console.print(table)
    for file, reason in skipped:
        console.print(f"[yellow]skipped[/] {file}: {reason}", highlight=False)
    for note in notes:
        console.print(f"[yellow]note[/] {note}", highlight=False)


def annotate(image: np.ndarray, predictions: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of a BGR image with each face's box and predicted emotion drawn on it.

    Faces are boxed in green; an image without a detected face gets an orange label
    starting with "no face:" (its whole area was classified).
    """
    canvas = image.copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 250))
    for prediction in predictions:
        box = prediction.box
        text = f"{prediction.label} {prediction.confidence:.0%}"
        if prediction.face_detected:
            colour = BOX_COLOUR
            corner = (box.x + box.width - 1, box.y + box.height - 1)
            cv2.rectangle(canvas, (box.x, box.y), corner, colour, thickness)
        else:
            colour, text = WHOLE_IMAGE_COLOUR, f"no face: {text}"
        _label(canvas, text, box, colour, thickness)
    return canvas


def _label(canvas: np.ndarray, text: str, box: Box, colour: tuple, thickness: int) -> None:
    """Text on a filled band above the box (inside its top edge when there is no room),
    scaled to stay within the image."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    room = canvas.shape[1] - box.x - 2 * thickness
    (width, _), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(max(0.5, box.width / 400), room / width)
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    band = height + baseline + 2 * thickness
    top = box.y - band if box.y - band >= 0 else box.y
    cv2.rectangle(canvas, (box.x, top), (box.x + width + 2 * thickness, top + band), colour, -1)
    origin = (box.x + thickness, top + height + thickness)
    cv2.putText(canvas, text, origin, font, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def save_annotated(path: Path, image: np.ndarray, predictions: Sequence[FacePrediction]) -> Path:
    """Write the annotated copy of an image; a name OpenCV cannot encode gets .png appended."""
    if path.suffix.lower() not in WRITABLE_SUFFIXES:
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix, annotate(image, predictions))
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    encoded.tofile(path)
    return path
