"""Predict's engine: ONNX Runtime by default (fast on a CPU), PyTorch when asked or when
ONNX Runtime is missing, the same probabilities either way."""

import json
import sys
from dataclasses import replace

import cv2
import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.predict import runtime
from mer_lightning.predict.task import run as predict_run
from tests.predict.helpers import compose_task, face_photo


def probabilities(report_file):
    """Each face's class probabilities from a predictions.json, in file order."""
    report = json.loads(report_file.read_text())
    return report, [face["probabilities"] for face in report["predictions"]]


def test_predict_runs_on_onnx_runtime_with_pytorchs_probabilities(checkpoint, tmp_path):
    photo, _ = face_photo(size=(512, 512))
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    runs = {}
    for engine in ("auto", "torch"):
        out = tmp_path / engine
        overrides = [f"ckpt={checkpoint}", f"input={tmp_path / 'photo.png'}", f"runtime={engine}"]
        predict_run(compose_task("predict", overrides, out))
        runs[engine] = probabilities(out / "predictions.json")

    (fast, fast_probs), (slow, slow_probs) = runs["auto"], runs["torch"]
    assert fast["runtime"] == "onnxruntime" and slow["runtime"] == "torch"
    assert len(fast_probs) == len(slow_probs) == 1
    for name, value in slow_probs[0].items():
        assert fast_probs[0][name] == pytest.approx(value, abs=1e-4)


def test_the_onnx_engine_mirror_averages_as_the_checkpoint_does(checkpoint):
    model = load_checkpoint(checkpoint)
    for mirrored in (False, True):
        reference = replace(model, tta_hflip=mirrored)
        fast = runtime.with_runtime(reference, "onnx")
        assert runtime.engine_name(fast) == "onnxruntime"
        images = torch.randint(0, 256, (5, 3, model.image_size, model.image_size))
        torch.testing.assert_close(
            fast.predict_proba(images.to(torch.uint8)),
            reference.predict_proba(images.to(torch.uint8)),
            atol=1e-5,
            rtol=0,
        )


def test_without_onnx_runtime_auto_falls_back_and_onnx_says_how_to_install(checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    model = load_checkpoint(checkpoint)

    assert runtime.engine_name(runtime.with_runtime(model, "auto")) == "torch"
    with pytest.raises(UserError) as error:
        runtime.with_runtime(model, "onnx")
    message = str(error.value)
    assert "runtime=onnx" in message and "pip install onnxruntime" in message
    assert "runtime=torch" in message and "\n" not in message


def test_an_unknown_runtime_names_the_key_and_the_choices(checkpoint):
    with pytest.raises(UserError, match=r"runtime=tensorrt must be one of \['auto', 'onnx'"):
        runtime.with_runtime(load_checkpoint(checkpoint), "tensorrt")
