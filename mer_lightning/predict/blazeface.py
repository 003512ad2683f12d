"""MediaPipe's short-range BlazeFace face detector: the one the training faces were cut with.

The dataset's author ran `mp.solutions.face_detection.FaceDetection()` (the short-range
BlazeFace model, minimum confidence 0.5) on every photo and cropped its box. MediaPipe
releases from 0.10.30 on dropped that legacy `solutions` API and no longer ship the model
file, so this module runs the same network, `assets/face_detection_short_range.tflite`
(vendored from the mediapipe 0.10.21 wheel, Apache-2.0: `assets/LICENSE.mediapipe`), through
the Tasks API `FaceDetector`, whose graph decodes it as the legacy one did: letterboxed
128x128 input, the same SSD anchors, weighted non-maximum suppression. Nothing is
downloaded, and no TensorFlow is needed: MediaPipe's own runtime runs the model.
"""

import atexit
import contextlib
import os
import threading
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from mer_lightning.core.errors import UserError
from mer_lightning.predict.box import Box

MODEL_FILE = Path(__file__).parent / "assets" / "face_detection_short_range.tflite"
INSTALL_HINT = "pip install 'mediapipe>=0.10.30,<0.10.32', or use faces.detector=haar"


class BlazeFaceDetector:
    """Face boxes from BlazeFace short range, as MediaPipe returns them (no margin), largest first.

    `min_confidence` is the legacy API's `min_detection_confidence` (0.5 by default there and
    in the dataset's crop script).
    """

    name = "MediaPipe's BlazeFace (short range)"

    def __init__(self, min_confidence: float = 0.5) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise UserError(f"faces.min_confidence={min_confidence} must lie in [0, 1]")
        self.min_confidence = float(min_confidence)
        self._detector = _tasks_detector(self.min_confidence)

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in a BGR image, clipped to it, largest first."""
        import mediapipe as mp

        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        result = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        boxes = []
        for detection in result.detections:
            found = detection.bounding_box
            box = Box(found.origin_x, found.origin_y, found.width, found.height)
            box = box.expand(0.0, image.shape)  # clipped to the image
            if box.width > 0 and box.height > 0:
                boxes.append(box)
        return sorted(boxes, key=lambda box: box.width * box.height, reverse=True)


@cache
def _tasks_detector(min_confidence: float):
    """One MediaPipe FaceDetector per confidence threshold for the whole process.

    Creating one loads the model and builds a graph, so it is shared. It is closed when the
    interpreter exits, among the hooks that run before thread pools stop (MediaPipe calls its
    C library through one): closed later, its finaliser fails noisily at teardown.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as error:
        raise UserError(
            f"faces.detector=blazeface needs MediaPipe ({error}); {INSTALL_HINT}"
        ) from error
    if not MODEL_FILE.is_file():
        raise UserError(
            f"the BlazeFace model file {MODEL_FILE} is missing from this install; reinstall "
            "mer_lightning, or use faces.detector=haar"
        )
    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_buffer=MODEL_FILE.read_bytes()),
        min_detection_confidence=min_confidence,
    )
    detector = vision.FaceDetector.create_from_options(options)
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_closer(detector))
    return detector


def _closer(detector):
    """A callable that closes `detector`, quietly if the interpreter is already stopping."""

    def close() -> None:
        with contextlib.suppress(RuntimeError):
            detector.close()

    return close
