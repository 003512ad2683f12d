"""`python -m mer_lightning.predict` on images and folders: outputs, bad files, real faces."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.predict import shipped
from mer_lightning.predict.faces import to_model_input
from mer_lightning.predict.task import run
from tests.helpers import CLASSES
from tests.predict.helpers import compose_task, upscaled_face

PROBABILITY_COLUMNS = [f"p_{name}" for name in CLASSES]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def photo_folder(synthetic_root, tmp_path) -> Path:
    """Nested synthetic images (no faces), a text file, an empty and a truncated JPEG."""
    folder = tmp_path / "photos"
    (folder / "day1" / "deeper").mkdir(parents=True)
    test = synthetic_root / "test"
    shutil.copy(test / "anger" / "anger1.jpg", folder / "a.jpg")
    shutil.copy(test / "fear" / "fear2.jpg", folder / "day1" / "b.jpg")
    cv2.imwrite(
        str(folder / "day1" / "deeper" / "c.png"),
        cv2.imread(str(test / "sadness" / "sadness3.jpg")),
    )
    (folder / "notes.txt").write_text("not an image")
    (folder / "day1" / "empty.jpg").write_bytes(b"")
    (folder / "day1" / "truncated.jpg").write_bytes(
        (test / "anger" / "anger2.jpg").read_bytes()[:40]
    )
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    return folder


def test_folder_prediction_writes_csv_json_and_annotated_copies(checkpoint, photo_folder, tmp_path):
    before = listing(photo_folder)
    out = tmp_path / "run"
    cfg = compose_task(
        "predict", [f"ckpt={checkpoint}", f"input={photo_folder}", "save_annotated=true"], out
    )

    summary = run(cfg)

    images = [
        photo_folder / "a.jpg",
        photo_folder / "day1" / "b.jpg",
        photo_folder / "day1" / "deeper" / "c.png",
    ]
    assert summary == {
        "images": 3,
        "faces": 0,
        "whole_images": 3,
        "videos": 0,
        "frames": 0,
        "frame_faces": 0,
        "skipped": 3,
        "run_dir": str(out),
    }
    rows = read_csv(out / "predictions.csv")
    assert list(rows[0]) == [
        "file",
        "face",
        "face_detected",
        "x",
        "y",
        "width",
        "height",
        "predicted",
        "confidence",
        *PROBABILITY_COLUMNS,
    ]
    assert [row["file"] for row in rows] == [str(p) for p in images]

    # The synthetic images hold no face: each is classified whole, resized as a dataset crop.
    model = load_checkpoint(checkpoint)
    assert cfg.enhance.enabled is False and cfg.faces.dataset_size == 80
    for row, path in zip(rows, images, strict=True):
        image = cv2.imread(str(path))
        expected = model.predict_proba(to_model_input([image], 32, 80))[0]
        probabilities = torch.tensor([float(row[c]) for c in PROBABILITY_COLUMNS])
        torch.testing.assert_close(probabilities, expected, atol=1e-6, rtol=0)
        assert row["face_detected"] == "False" and row["face"] == "0"
        assert (row["x"], row["y"], row["width"], row["height"]) == ("0", "0", "80", "80")
        assert row["predicted"] == CLASSES[int(expected.argmax())]
        assert float(row["confidence"]) == pytest.approx(float(expected.max()), abs=1e-6)

    report = json.loads((out / "predictions.json").read_text())
    assert report["checkpoint"] == str(checkpoint) and report["classes"] == list(CLASSES)
    assert [p["file"] for p in report["predictions"]] == [str(p) for p in images]
    first = report["predictions"][0]
    assert first["box"] == {"x": 0, "y": 0, "width": 80, "height": 80}
    assert first["face_detected"] is False and first["predicted"] == rows[0]["predicted"]
    assert list(first["probabilities"]) == list(CLASSES)
    assert sum(first["probabilities"].values()) == pytest.approx(1.0)
    skipped = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert skipped == {
        "empty.jpg": "empty file",
        "truncated.jpg": "not an image format OpenCV can decode",
        "notes.txt": "not an image format OpenCV can decode",
    }

    for relative in ("a.jpg", "day1/b.jpg", "day1/deeper/c.png"):
        annotated = cv2.imread(str(out / "annotated" / relative))
        original = cv2.imread(str(photo_folder / relative))
        assert annotated.shape == original.shape and (annotated != original).any()
    assert listing(photo_folder) == before  # nothing written into the input folder


def test_a_single_image_detection_off_and_one_thread(checkpoint, synthetic_root, tmp_path):
    image = synthetic_root / "test" / "happiness" / "happiness1.jpg"
    out = tmp_path / "run"
    cfg = compose_task(
        "predict",
        [f"ckpt={checkpoint}", f"input={image}", "faces.detect=false", "enhance.enabled=false"]
        + ["threads=1"],
        out,
    )
    threads = torch.get_num_threads()
    try:
        assert run(cfg)["images"] == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    [row] = read_csv(out / "predictions.csv")
    expected = load_checkpoint(checkpoint).predict_proba(
        to_model_input([cv2.imread(str(image))], 32, 80)
    )[0]
    assert row["file"] == str(image) and row["face_detected"] == "False"
    assert float(row["p_happiness"]) == pytest.approx(float(expected[3]), abs=1e-6)
    assert not (out / "annotated").exists()


def test_missing_keys_and_inputs_are_user_errors(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "no_model_here")
    with pytest.raises(UserError, match="no trained model ships with this install .*ckpt=PATH"):
        run(compose_task("predict", ["input=x.jpg"], tmp_path / "a"))
    with pytest.raises(UserError, match="input is required"):
        run(compose_task("predict", [f"ckpt={checkpoint}"], tmp_path / "a2"))
    with pytest.raises(UserError, match="input=.*nowhere does not exist"):
        run(
            compose_task(
                "predict", [f"ckpt={checkpoint}", f"input={tmp_path / 'nowhere'}"], tmp_path / "b"
            )
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no files"):
        run(
            compose_task(
                "predict", [f"ckpt={checkpoint}", f"input={tmp_path / 'empty'}"], tmp_path / "c"
            )
        )


@pytest.mark.slow
def test_command_line_prints_the_table_and_exits_2_on_a_user_error(
    checkpoint, photo_folder, tmp_path
):
    out = tmp_path / "cli"
    command = [
        sys.executable,
        "-m",
        "mer_lightning.predict",
        f"ckpt={checkpoint}",
        f"hydra.run.dir={out}",
    ]
    done = subprocess.run(
        [*command, f"input={photo_folder}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Predicted emotions" in done.stdout and "skipped" in done.stdout
    assert len(read_csv(out / "predictions.csv")) == 3 and (out / "predict.log").is_file()

    bad = subprocess.run(
        [*command, f"input={tmp_path / 'nowhere'}"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "error: input=" in bad.stdout and "Traceback" not in bad.stderr


def test_predictions_for_a_folder_of_real_test_images(checkpoint, real_root, tmp_path):
    folder = tmp_path / "real"
    chosen = []
    for name in ("anger", "happiness", "surprise"):
        (folder / name).mkdir(parents=True)
        for number in (1, 2):
            chosen.append(
                shutil.copy(real_root / "test" / name / f"{name}{number}.jpg", folder / name)
            )
    cv2.imwrite(
        str(folder / "photo.jpg"),
        upscaled_face(real_root / "test" / "happiness" / "happiness1.jpg"),
    )
    out = tmp_path / "run"

    summary = run(compose_task("predict", [f"ckpt={checkpoint}", f"input={folder}"], out))

    report = json.loads((out / "predictions.json").read_text())
    files = {p["file"] for p in report["predictions"]}
    assert files == {str(Path(p)) for p in chosen} | {str(folder / "photo.jpg")}
    assert summary["images"] == 7 and summary["skipped"] == 0
    [photo] = [p for p in report["predictions"] if p["file"] == str(folder / "photo.jpg")]
    assert photo["face_detected"] and 250 < photo["box"]["width"] < 420
    for prediction in report["predictions"]:
        assert prediction["predicted"] in CLASSES
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
