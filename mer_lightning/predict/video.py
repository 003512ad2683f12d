"""Video files and the webcam: one frame loop, predictions per frame with the frame's time.

`frame_loop` reads frames from any cv2.VideoCapture (a file or a camera) and predicts every
`stride`-th; `predict_video` drives it over a file and writes the annotated copy; the webcam
mode (webcam.py) drives the same loop over a camera and shows it in a window.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mer_lightning.core.errors import UserError
from mer_lightning.predict.outputs import annotate
from mer_lightning.predict.pipeline import FacePrediction, FacePredictor

log = logging.getLogger(__name__)

# Containers OpenCV's FFmpeg backend reads; other files are treated as images.
VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
    ".ts", ".mts", ".ogv",
}  # fmt: skip
ANNOTATED_CODECS = ((".mp4", "mp4v"), (".avi", "MJPG"))  # tried in order for the annotated copy


class UnreadableVideo(Exception):
    """A file OpenCV cannot open or read as a video; the run reports it and goes on."""


@dataclass(frozen=True)
class Frame:
    """One frame read by the loop, with the predictions drawn on it.

    `predicted` is False for the frames the stride skips: they carry the predictions of the
    last predicted frame, so that a display or an annotated video shows no flicker.
    """

    index: int
    time: float
    image: np.ndarray
    predictions: list[FacePrediction]
    predicted: bool


@dataclass
class VideoResult:
    """What predicting one video gave: the faces of its predicted frames, and counts."""

    predictions: list[FacePrediction] = field(default_factory=list)
    frames_read: int = 0
    frames_predicted: int = 0
    frames_without_face: int = 0
    fps: float = 0.0
    annotated: Path | None = None


def is_video(path: Path) -> bool:
    """Whether a file is taken as a video (by its suffix)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def check_stride(stride: int) -> int:
    """video.stride as a positive int, or a UserError that names the key."""
    if int(stride) < 1:
        raise UserError(f"video.stride={stride} must be 1 (every frame) or more")
    return int(stride)


def frame_loop(
    capture: cv2.VideoCapture,
    predictor: FacePredictor,
    file: str,
    stride: int,
    clock: Callable[[int], float],
) -> Iterator[Frame]:
    """Frames of `capture` until it ends, every `stride`-th one predicted.

    `clock(index)` gives a frame's time in seconds (a file's frame rate, a camera's wall
    clock). Frames without a face get no prediction: a frame is not a face crop.
    """
    last: list[FacePrediction] = []
    index = 0
    while True:
        ok, image = capture.read()
        if not ok or image is None:
            return
        time = float(clock(index))
        predicted = index % stride == 0
        if predicted:
            last = predictor.predict(image, file, whole_if_no_face=False, frame=index, time=time)
        yield Frame(index, time, image, last, predicted)
        index += 1


def open_video(path: Path) -> cv2.VideoCapture:
    """An opened capture of a video file, or UnreadableVideo saying why not."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UnreadableVideo("OpenCV cannot open it as a video (damaged, or a codec it lacks)")
    return capture


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path]:
    """An open writer for the annotated copy: MPEG-4 in .mp4, else Motion JPEG in .avi."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix, codec in ANNOTATED_CODECS:
        target = path.with_suffix(suffix)
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*codec), fps, size)
        if writer.isOpened():
            return writer, target
        writer.release()
    raise UserError(f"OpenCV cannot write a video at {path}; check free space and permissions")


def predict_video(
    predictor: FacePredictor, path: Path, stride: int, annotated: Path | None = None
) -> VideoResult:
    """Predict every `stride`-th frame of a video file; with `annotated`, write a copy of the
    whole video with each face's box and emotion drawn (as shown at the last predicted frame).
    Raises UnreadableVideo when the file cannot be opened or yields no frame."""
    capture = open_video(path)
    result = VideoResult(fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0))

    def clock(index: int) -> float:
        if result.fps > 0:
            return index / result.fps
        return float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0

    writer = None
    try:
        for frame in frame_loop(capture, predictor, str(path), stride, clock):
            result.frames_read += 1
            if frame.predicted:
                result.frames_predicted += 1
                result.predictions += frame.predictions
                result.frames_without_face += not frame.predictions
            if annotated is not None:
                if writer is None:
                    height, width = frame.image.shape[:2]
                    writer, result.annotated = _video_writer(
                        annotated, result.fps or 25.0, (width, height)
                    )
                writer.write(annotate(frame.image, frame.predictions))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if result.frames_read == 0:
        raise UnreadableVideo("OpenCV opened it but could not read a single frame")
    return result
