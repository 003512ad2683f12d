"""Find faces, then crop, enhance and resize them for the model.

Two detectors: MediaPipe's short-range BlazeFace (the default, `blazeface.py`), the model the
dataset's author cut every training face with, and OpenCV's Haar cascade (`haar`), the
paper's. Images here are OpenCV's: numpy uint8 arrays (H, W, 3) in BGR order. Only
`to_model_input` turns faces into the RGB tensor layout the model was trained on.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from mer_lightning.core.errors import UserError

ENHANCE_METHODS = ("equalize", "clahe", "stretch")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width and height."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def whole(cls, image: np.ndarray) -> "Box":
        """The box covering a whole image."""
        return cls(0, 0, image.shape[1], image.shape[0])

    def expand(self, margin: float, image_shape: tuple[int, ...]) -> "Box":
        """Grow by `margin` x side on every side, then clip to the image (H, W, ...)."""
        dx, dy = round(self.width * margin), round(self.height * margin)
        left, top = max(0, self.x - dx), max(0, self.y - dy)
        right = min(image_shape[1], self.x + self.width + dx)
        bottom = min(image_shape[0], self.y + self.height + dy)
        return Box(left, top, right - left, bottom - top)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The pixels of `image` inside this box."""
        return image[self.y : self.y + self.height, self.x : self.x + self.width]


def cascade_file(name: str) -> Path:
    """A cascade XML: a path, or a file name among those opencv ships in cv2.data.haarcascades."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped_dir = getattr(getattr(cv2, "data", None), "haarcascades", "")
    shipped = Path(shipped_dir) / name
    if shipped_dir and shipped.is_file():
        return shipped
    raise UserError(
        f"faces.cascade={name} is neither a file nor a cascade shipped with OpenCV "
        f"{cv2.__version__} (looked in {shipped_dir or 'cv2.data.haarcascades, absent'}); "
        "OpenCV 5 dropped the Haar cascades from its wheels: "
        "pip install 'opencv-python-headless>=4.8,<5'"
    )


class HaarDetector:
    """OpenCV's Haar cascade over a histogram-equalised grey copy of the image."""

    name = "OpenCV's Haar cascade"

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
    ) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise UserError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it out of "
                "the main wheels); pip install 'opencv-python-headless>=4.8,<5'"
            )
        if scale_factor <= 1.0:
            raise UserError(f"faces.scale_factor={scale_factor} must be greater than 1")
        path = cascade_file(cascade)
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise UserError(f"faces.cascade={path} is not a Haar cascade XML OpenCV can load")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in a BGR image, largest first."""
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        found = self.classifier.detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        boxes = [Box(*(int(v) for v in row)) for row in found]
        return sorted(boxes, key=lambda box: box.width * box.height, reverse=True)


def enhance(face: np.ndarray, settings: Mapping[str, Any]) -> np.ndarray:
    """Contrast enhancement of a BGR face on its luminance only, so colours keep their hue.

    equalize: global histogram equalisation; clahe: contrast-limited adaptive equalisation;
    stretch: linear stretch of the luminance to the full 0-255 range.
    """
    if not settings.get("enabled", True):
        return face
    method = settings.get("method", "equalize")
    luma, red_diff, blue_diff = cv2.split(cv2.cvtColor(face, cv2.COLOR_BGR2YCrCb))
    if method == "equalize":
        luma = cv2.equalizeHist(luma)
    elif method == "clahe":
        grid = int(settings.get("tile_grid", 8))
        clahe = cv2.createCLAHE(float(settings.get("clip_limit", 2.0)), (grid, grid))
        luma = clahe.apply(luma)
    elif method == "stretch":
        luma = cv2.normalize(luma, None, 0, 255, cv2.NORM_MINMAX)
    else:
        raise UserError(f"enhance.method={method} is not one of {list(ENHANCE_METHODS)}")
    return cv2.cvtColor(cv2.merge((luma, red_diff, blue_diff)), cv2.COLOR_YCrCb2BGR)


def to_model_input(
    faces: list[np.ndarray], image_size: int, dataset_size: int | None = None
) -> torch.Tensor:
    """BGR faces of any size -> one uint8 RGB batch (N, 3, S, S) at the model's input size.

    With `dataset_size` (80 for the Kaggle set) each face takes the road a training face took:
    cv2.resize to dataset_size x dataset_size with its default bilinear interpolation, as the
    dataset's author did, then, if the model reads another size, PIL's bilinear resize, as the
    training loader does. Without it the face is resized straight to the model's input.
    """
    resized = []
    for face in faces:
        if dataset_size:
            square = cv2.resize(face, (dataset_size, dataset_size))
            rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
            if dataset_size != image_size:
                size = (image_size, image_size)
                rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        else:
            shrinking = face.shape[0] > image_size or face.shape[1] > image_size
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            square = cv2.resize(face, (image_size, image_size), interpolation=interpolation)
            rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
        resized.append(rgb)
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).contiguous()


DETECTORS = ("blazeface", "haar")


def build_detector(settings: Mapping[str, Any]):
    """The detector `faces.detector` names, configured by the other faces.* keys, or None when
    faces.detect is false. Both kinds offer `detect(image) -> list[Box]`, largest first."""
    if not settings.get("detect", True):
        return None
    kind = settings.get("detector", "blazeface")
    if kind == "blazeface":
        from mer_lightning.predict.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(float(settings.get("min_confidence", 0.5)))
    if kind == "haar":
        return HaarDetector(
            settings.get("cascade", "haarcascade_frontalface_default.xml"),
            float(settings.get("scale_factor", 1.1)),
            int(settings.get("min_neighbors", 5)),
            int(settings.get("min_size", 30)),
        )
    raise UserError(f"faces.detector={kind} is not one of {list(DETECTORS)}")
