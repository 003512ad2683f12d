"""Video files: every stride-th frame predicted, frames.csv with times, plot, annotated copy;
the loop is the one the webcam runs. Bad videos are skipped with their reason."""

import csv
import json

import cv2
import numpy as np
import pytest

from mer_lightning.core.errors import UserError
from mer_lightning.predict.task import run
from tests.helpers import CLASSES
from tests.predict.helpers import compose_task, face_photo

FPS = 5.0


def write_clip(path, faces=(True, False, False, True, True, False)) -> np.ndarray:
    """A short MPEG-4 clip written with OpenCV: the test's face photo or a blank frame."""
    photo, _ = face_photo(size=(512, 512))  # the face is 95 px high: kept by min_crop=80
    blank = np.full_like(photo, 128)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (512, 512))
    assert writer.isOpened()
    for face in faces:
        writer.write(photo if face else blank)
    writer.release()
    return photo


def read_rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_video_gives_rows_per_face_per_frame_a_plot_and_an_annotated_copy(checkpoint, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    out = tmp_path / "run"
    overrides = [f"ckpt={checkpoint}", f"input={clip}", "video.stride=2", "save_annotated=true"]

    summary = run(compose_task("predict", overrides, out))

    # Frames 0, 2 and 4 are predicted; frame 2 is blank, so it has no row.
    rows = read_rows(out / "frames.csv")
    assert [(row["frame"], float(row["time_s"])) for row in rows] == [("0", 0.0), ("4", 0.8)]
    assert list(rows[0])[:4] == ["file", "frame", "time_s", "face"]
    for row in rows:
        assert row["file"] == str(clip) and row["face_detected"] == "True"
        assert row["predicted"] in CLASSES
        assert 80 <= int(row["height"]) <= 110
        assert sum(float(row[f"p_{name}"]) for name in CLASSES) == pytest.approx(1, abs=1e-4)
    assert summary["videos"] == 1 and summary["frames"] == 3 and summary["frame_faces"] == 2
    assert summary["images"] == 0 and summary["skipped"] == 0

    plot = cv2.imread(str(out / "plots" / "clip.mp4.png"))
    assert plot is not None and plot.shape[1] > 400

    annotated = cv2.VideoCapture(str(out / "annotated" / "clip.mp4"))
    frames = []
    while True:
        ok, frame = annotated.read()
        if not ok:
            break
        frames.append(frame)
    annotated.release()
    assert len(frames) == 6 and frames[0].shape == (512, 512, 3)
    source = cv2.VideoCapture(str(clip))
    _, first = source.read()
    source.release()
    assert np.abs(frames[0].astype(int) - first.astype(int)).mean() > 0.5  # boxes drawn


def test_bad_videos_are_skipped_and_the_batch_goes_on(checkpoint, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_clip(folder / "good.mp4", faces=(False, False))
    (folder / "broken.mp4").write_text("not a video")
    (folder / "empty.avi").write_bytes(b"")
    photo, _ = face_photo(size=(512, 512))
    cv2.imwrite(str(folder / "photo.png"), photo)
    out = tmp_path / "run"

    summary = run(compose_task("predict", [f"ckpt={checkpoint}", f"input={folder}"], out))

    report = json.loads((out / "predictions.json").read_text())
    skipped = {item["file"].rsplit("/", 1)[-1]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == {"broken.mp4", "empty.avi"}
    assert all("OpenCV" in reason for reason in skipped.values())
    assert summary["images"] == 1 and summary["faces"] == 1 and summary["videos"] == 1
    # good.mp4 has no face in any frame: one note line, no frames.csv rows, no plot.
    printed = capsys.readouterr().out
    assert "no face found in 2 of 2 predicted frames" in " ".join(printed.split())
    assert not (out / "frames.csv").exists() and not (out / "plots").exists()


def test_stride_must_be_positive(checkpoint, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip, faces=(True,))
    cfg = compose_task(
        "predict", [f"ckpt={checkpoint}", f"input={clip}", "video.stride=0"], tmp_path
    )
    with pytest.raises(UserError, match="video.stride=0 must be 1"):
        run(cfg)
