"""`python -m mer_lightning.predict.devset`: every crop setting scored on labelled photos."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mer_lightning.core.errors import UserError
from mer_lightning.predict.devset import SETTINGS, run
from tests.helpers import CLASSES
from tests.predict.helpers import face_photo


@pytest.fixture
def dev_set(tmp_path):
    """One folder per class: the test's face photo in two framings, and a blank photo."""
    root = tmp_path / "dev"
    for index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        photo, _ = face_photo(size=(512, 512))
        cv2.imwrite(str(root / name / "face.jpg"), photo)
        shifted, _ = face_photo(scale=1.2, left=20 * index, top=10, size=(720, 640))
        cv2.imwrite(str(root / name / "shifted.jpg"), shifted)
        cv2.imwrite(str(root / name / "blank.png"), np.full((300, 300, 3), 90, np.uint8))
    (root / "anger" / "broken.jpg").write_text("not a photo")
    return root


def test_each_setting_gets_detection_rate_accuracy_and_macro_f1(checkpoint, dev_set, tmp_path):
    out = tmp_path / "out"

    payload = run([f"root={dev_set}", f"ckpt={checkpoint}", f"out={out}"])

    assert json.loads((out / "devset.json").read_text()) == payload
    assert payload["runtime"] == "onnxruntime"  # the engine predict uses by default
    assert payload["photos"] == 21 and [s["file"] for s in payload["skipped"]] == [
        str(dev_set / "anger" / "broken.jpg")
    ]
    rows = {row["setting"]: row for row in payload["results"]}
    assert list(rows) == [setting.name for setting in SETTINGS]
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["f1_macro"] <= 1
    new = rows["new default: blazeface, margin 0, no enhancement, dataset crop"]
    assert new["detection_rate"] == pytest.approx(14 / 21)  # both face photos, no blank one
    table = (out / "devset.md").read_text()
    assert "| setting | faces found | accuracy | macro F1 |" in table
    assert "| old default: haar, margin 0.2, equalize |" in table


def test_folders_must_be_the_model_classes(checkpoint, tmp_path):
    (tmp_path / "dev" / "joy").mkdir(parents=True)
    with pytest.raises(UserError, match=r"one folder per class .*\['joy'\]"):
        run([f"root={tmp_path / 'dev'}", f"ckpt={checkpoint}"])


@pytest.mark.slow
def test_command_line_without_root_exits_2_with_one_line(checkpoint):
    done = subprocess.run(
        [sys.executable, "-m", "mer_lightning.predict.devset", f"ckpt={checkpoint}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "root is required" in done.stdout
    assert "Traceback" not in done.stderr
