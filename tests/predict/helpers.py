"""Helpers for the predict and export tests: compose their root configs, make test photos."""

from pathlib import Path

import cv2
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from mer_lightning.runs.config import CONFIG_DIR


def compose_task(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/<config_name>.yaml as its `python -m` entry would, run dir set to output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def upscaled_face(path: Path, scale: int = 4, border: int = 80) -> np.ndarray:
    """A dataset face (a tight 80x80 crop) made into a photo the Haar cascade can search:
    enlarged, with `border` pixels of context around it. The face spans
    (border, border) to (border + 80 * scale) on both axes."""
    face = cv2.imread(str(path))
    big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_REPLICATE)


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = inter_w * inter_h
    return inter / (aw * ah + bw * bh - inter)


# Where MediaPipe's legacy `solutions.face_detection` (mediapipe 0.10.21, the API the dataset's
# crops were cut with) boxes the face of scikit-image's astronaut photo (512x512, public
# domain): x, y, width, height in pixels, int() of its relative box as the dataset's script did.
ASTRONAUT_FACE = (177, 82, 95, 95)


def astronaut() -> np.ndarray:
    """scikit-image's bundled astronaut photo (Eileen Collins, NASA, public domain) as BGR:
    a real face that ships with a package, so no face image lives in this repository."""
    data = __import__("pytest").importorskip(
        "skimage.data", reason="scikit-image (a dev dependency) ships the test face photo"
    )
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_photo(
    scale: float = 1.0, left: int = 0, top: int = 0, size: tuple[int, int] = (720, 640)
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A photo made by the test: the astronaut scaled by `scale`, pasted at (left, top) on a
    grey canvas of `size` (width, height); returns it and where the dataset's detector boxes
    the face in it."""
    source = astronaut()
    if scale != 1.0:
        source = cv2.resize(source, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((size[1], size[0], 3), 128, np.uint8)
    height, width = source.shape[:2]
    canvas[top : top + height, left : left + width] = source[: size[1] - top, : size[0] - left]
    x, y, w, h = ASTRONAUT_FACE
    return canvas, (
        round(left + x * scale),
        round(top + y * scale),
        round(w * scale),
        round(h * scale),
    )
