"""Webcam mode without a real camera or window: clear failures, and the capture loop."""

import json

import cv2
import numpy as np
import pytest

from mer_lightning.core.errors import UserError
from mer_lightning.predict import webcam
from mer_lightning.predict.box import Box
from mer_lightning.predict.task import run
from tests.predict.helpers import compose_task


class FakeCamera:
    """Stands in for cv2.VideoCapture: `frames` then end of stream; records release()."""

    instances: list["FakeCamera"] = []

    def __init__(self, index, frames=(), opened=True) -> None:
        self.index, self.frames, self.opened = index, list(frames), opened
        self.released = False
        FakeCamera.instances.append(self)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self) -> None:
        self.released = True


class FixedDetector:
    def detect(self, image):
        return [Box(20, 10, 30, 30)]


@pytest.fixture
def screen(monkeypatch):
    """A GUI build of OpenCV and a display, as far as the checks can tell."""
    monkeypatch.setattr(webcam, "has_gui", lambda: True)
    monkeypatch.setenv("DISPLAY", ":0")


def test_no_camera_fails_with_the_index_and_the_config_key(
    checkpoint, screen, monkeypatch, tmp_path
):
    FakeCamera.instances.clear()
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: FakeCamera(index, opened=False))
    cfg = compose_task(
        "predict", [f"ckpt={checkpoint}", "input=webcam", "webcam.camera=3"], tmp_path
    )
    with pytest.raises(UserError, match=r"cannot open camera 3 \(webcam.camera=3\)"):
        run(cfg)
    assert [camera.index for camera in FakeCamera.instances] == [3]
    assert FakeCamera.instances[0].released


def test_headless_opencv_fails_naming_the_webcam_extra(monkeypatch):
    monkeypatch.setattr(webcam, "has_gui", lambda: False)
    with pytest.raises(UserError, match=r"headless build; install the GUI build.*\[webcam\]"):
        webcam.check_display()


def test_no_display_fails_before_touching_the_camera(monkeypatch):
    monkeypatch.setattr(webcam, "has_gui", lambda: True)
    monkeypatch.setattr(webcam.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="needs a display"):
        webcam.check_display()


def test_space_saves_the_frame_and_its_predictions_and_q_quits(
    checkpoint, screen, monkeypatch, tmp_path
):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(4)]
    FakeCamera.instances.clear()
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: FakeCamera(index, frames))
    keys = iter([-1, ord(" "), -1, ord("q")])  # frame 2 is captured, frame 4 quits
    shown = []
    monkeypatch.setattr(cv2, "namedWindow", lambda *args: None)
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *args: 1.0)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    monkeypatch.setattr("mer_lightning.predict.task.build_detector", lambda *args: FixedDetector())
    out = tmp_path / "run"

    overrides = [f"ckpt={checkpoint}", "input=webcam", "faces.min_crop=0"]
    summary = run(compose_task("predict", overrides, out))

    assert len(shown) == 4 and FakeCamera.instances[0].released
    assert (shown[0] != frames[0]).any()  # the box and emotion are drawn over the face
    assert summary["images"] == 1 and summary["faces"] == 1
    assert (cv2.imread(str(out / "captures" / "capture_001.png")) == frames[1]).all()
    assert (cv2.imread(str(out / "annotated" / "capture_001.png")) == shown[1]).all()
    [prediction] = json.loads((out / "predictions.json").read_text())["predictions"]
    assert prediction["file"] == "captures/capture_001.png"
    assert prediction["box"] == {"x": 20, "y": 10, "width": 30, "height": 30}
    assert (out / "predictions.csv").read_text().count("\n") == 2  # header + the one face
    # Every frame went through the video loop: one row per face per frame, with its time.
    rows = (out / "frames.csv").read_text().splitlines()
    assert rows[0].startswith("file,frame,time_s,face,") and len(rows) == 5
    assert [row.split(",")[1] for row in rows[1:]] == ["0", "1", "2", "3"]
    assert summary["frames"] == 4 and summary["frame_faces"] == 4


def test_has_gui_reads_the_opencv_build_information(monkeypatch):
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:          NONE\n")
    assert not webcam.has_gui()
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:          QT5\n    QT: YES")
    assert webcam.has_gui()
