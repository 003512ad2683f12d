"""Live prediction on a webcam: the emotion over each face; space saves the frame, q quits.

The frames come through the same loop as a video file's (video.frame_loop), so every
predicted frame also becomes rows of frames.csv with its time since the start. Needs
OpenCV's GUI build (the `webcam` extra, opencv-python) and a display; without either, or
without a camera, it stops with a UserError that says what to do.
"""

import dataclasses
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mer_lightning.core.errors import UserError
from mer_lightning.predict.outputs import annotate, save_annotated
from mer_lightning.predict.pipeline import FacePrediction, FacePredictor
from mer_lightning.predict.video import frame_loop

log = logging.getLogger(__name__)

WINDOW = "mer_lightning - space: capture, q: quit"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc
CAPTURE_KEY = ord(" ")
GUI_EXTRA_HINT = (
    "install the GUI build of OpenCV: pip install -e '.[webcam]' && "
    "pip install --force-reinstall --no-deps 'opencv-python>=4.8,<5' "
    "(it shares the cv2 module with opencv-python-headless, so it must be installed last)"
)


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (headless builds report `GUI: NONE`)."""
    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return found is not None and found.group(1).upper() != "NONE"


def check_display() -> None:
    """Raise a UserError unless OpenCV has a GUI and there is a screen to show it on."""
    if not has_gui():
        raise UserError(
            f"input=webcam needs OpenCV with a GUI, but OpenCV {cv2.__version__} here is a "
            f"headless build; {GUI_EXTRA_HINT}"
        )
    no_screen = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and no_screen:
        raise UserError(
            "input=webcam needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set "
            "(a remote shell or a container?); run it on a desktop session, or predict on "
            "saved photos with input=IMAGE_OR_FOLDER"
        )


def open_camera(index: int) -> cv2.VideoCapture:
    """The opened camera, or a UserError that names the config key to change."""
    camera = cv2.VideoCapture(index)
    if not camera.isOpened():
        camera.release()
        raise UserError(
            f"cannot open camera {index} (webcam.camera={index}): no camera is connected at "
            "that index or another program holds it; connect one, close the other program, "
            "or pick another index, e.g. webcam.camera=1"
        )
    return camera


@dataclass
class WebcamSession:
    """What a webcam session gave: the captured frames' faces and every predicted frame's."""

    captured: list[FacePrediction] = field(default_factory=list)
    frames: list[FacePrediction] = field(default_factory=list)
    frames_predicted: int = 0
    captures: int = 0


def run_webcam(
    predictor: FacePredictor,
    camera_index: int,
    run_dir: Path,
    on_capture: Callable[[list[FacePrediction]], None],
    stride: int = 1,
) -> WebcamSession:
    """Show predictions live until q; each space press saves the frame and its predictions.

    Captures go to run_dir/captures/ (as seen by the camera) and run_dir/annotated/ (as
    shown); `on_capture` gets every prediction captured so far after each capture. Every
    `stride`-th frame is predicted; the others show the last prediction.
    """
    check_display()
    camera = open_camera(camera_index)
    session = WebcamSession()
    start = time.monotonic()
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        clock = lambda index: time.monotonic() - start  # noqa: E731 - wall clock of the session
        for frame in frame_loop(camera, predictor, f"camera {camera_index}", stride, clock):
            if frame.predicted:
                session.frames_predicted += 1
                session.frames += frame.predictions
            cv2.imshow(WINDOW, _overlay(frame.image, frame.predictions))
            key = cv2.waitKey(1) & 0xFF
            if key == CAPTURE_KEY:
                session.captures += 1
                session.captured += _save_capture(
                    frame.image, frame.predictions, run_dir, session.captures
                )
                on_capture(session.captured)
            elif key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                break
        else:
            log.warning("camera %d stopped sending frames; stopping", camera_index)
    finally:
        camera.release()
        cv2.destroyAllWindows()
    return session


def _overlay(frame: np.ndarray, predictions: list[FacePrediction]) -> np.ndarray:
    """The frame as shown: boxes and emotions, or a note that no face is in view."""
    shown = annotate(frame, predictions)
    if not predictions:
        cv2.putText(shown, "no face found", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
    return shown


def _save_capture(
    frame: np.ndarray, predictions: list[FacePrediction], run_dir: Path, number: int
) -> list[FacePrediction]:
    """Write the raw and annotated frame; return its predictions, named after the raw file."""
    name = f"capture_{number:03d}.png"
    raw = run_dir / "captures" / name
    raw.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(raw), frame):
        raise UserError(f"cannot write {raw}; check free space and permissions of {run_dir}")
    file = str(raw.relative_to(run_dir))
    named = [dataclasses.replace(prediction, file=file) for prediction in predictions]
    save_annotated(run_dir / "annotated" / name, frame, named)
    log.info("captured %s with %d face(s)", raw, len(named))
    return named
