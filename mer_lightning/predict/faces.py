"""Find faces, then crop, enhance and resize them for the model.

Two detectors: MediaPipe's short-range BlazeFace (the default, `blazeface.py`), the model the
dataset's author cut every training face with, and OpenCV's Haar cascade (`haar.py`),
the paper's. Images here are OpenCV's: numpy uint8 arrays (H, W, 3) in BGR order. Only
`to_model_input` turns faces into the RGB tensor layout the model was trained on.
"""

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from mer_lightning.core.errors import UserError
from mer_lightning.predict.blazeface import BlazeFaceDetector
from mer_lightning.predict.haar import HaarDetector

ENHANCE_METHODS = ("equalize", "clahe", "stretch")


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
        return BlazeFaceDetector(float(settings.get("min_confidence", 0.5)))
    if kind == "haar":
        return HaarDetector(
            settings.get("cascade", "haarcascade_frontalface_default.xml"),
            float(settings.get("scale_factor", 1.1)),
            int(settings.get("min_neighbors", 5)),
            int(settings.get("min_size", 30)),
        )
    raise UserError(f"faces.detector={kind} is not one of {list(DETECTORS)}")
