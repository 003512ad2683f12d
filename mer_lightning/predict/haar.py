"""OpenCV's Haar cascade face detector: the paper's, kept as `faces.detector=haar`."""

from pathlib import Path

import cv2
import numpy as np

from mer_lightning.core.errors import UserError
from mer_lightning.predict.box import Box


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
