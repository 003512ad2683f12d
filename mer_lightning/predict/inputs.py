"""The files a prediction run reads: one image or video, or every file under a folder."""

from pathlib import Path

import cv2
import numpy as np

from mer_lightning.core.errors import UserError


class UnreadableImage(Exception):
    """A file that is not an image OpenCV can decode; the run reports it and goes on."""


def find_files(source: Path, exclude: Path | None = None) -> list[Path]:
    """`source` itself, or every non-hidden file under the folder `source`, sorted.

    Files under `exclude` (the run's own output dir, should it lie inside the input folder)
    are left out, so that a run never reads back what it wrote.
    """
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(
            f"input={source} does not exist; pass input=IMAGE, input=VIDEO, input=FOLDER or "
            "input=webcam"
        )
    excluded = exclude.resolve() if exclude is not None else None
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        files.append(path)
    return files


def read_image(path: Path) -> np.ndarray:
    """A file as a BGR uint8 array (H, W, 3), EXIF rotation applied; raises UnreadableImage."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UnreadableImage(f"cannot read file: {error.strerror or error}") from error
    if data.size == 0:
        raise UnreadableImage("empty file")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise UnreadableImage(f"OpenCV cannot decode it: {error}") from error
    if image is None:
        raise UnreadableImage("not an image format OpenCV can decode")
    return image
