"""`python -m mer_lightning.export`: ONNX and TorchScript give PyTorch's logits."""

import dataclasses
import json

import onnx
import onnxruntime
import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.core.models import build_net
from mer_lightning.export import export, preprocessing, run
from tests.helpers import CLASSES
from tests.predict.helpers import compose_task


def normalised_batch(model, size: int, count: int = 8) -> torch.Tensor:
    images = torch.randint(
        0, 256, (count, 3, size, size), generator=torch.Generator().manual_seed(7)
    )
    return model.normalize(images.to(torch.uint8))


def onnx_logits(path, batch: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["logits"], {"image": batch.numpy()})[0])


def test_onnx_matches_pytorch_on_a_batch(checkpoint, tmp_path):
    summary = run(compose_task("export", [f"ckpt={checkpoint}", "format=onnx"], tmp_path))

    model = load_checkpoint(checkpoint)
    batch = normalised_batch(model, 32)  # 8 images; the export traced a batch of 1
    with torch.inference_mode():
        expected = model.net(batch)
    torch.testing.assert_close(
        onnx_logits(tmp_path / "model.onnx", batch), expected, atol=1e-4, rtol=0
    )
    assert summary["model"] == str(tmp_path / "model.onnx") and summary["max_abs_difference"] < 1e-4

    sidecar = json.loads((tmp_path / "preprocessing.json").read_text())
    assert sidecar["class_names"] == list(CLASSES) and sidecar["image_size"] == 32
    assert sidecar["mean"] == [0.5, 0.5, 0.5] and sidecar["std"] == [0.5, 0.5, 0.5]
    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert json.loads(metadata["mer_lightning.preprocessing"]) == sidecar


def test_torchscript_matches_pytorch_and_carries_its_preprocessing(checkpoint, tmp_path):
    run(compose_task("export", [f"ckpt={checkpoint}", "format=torchscript"], tmp_path))

    model = load_checkpoint(checkpoint)
    batch = normalised_batch(model, 32)
    extra = {"preprocessing.json": ""}
    with pytest.warns(FutureWarning):  # TorchScript is deprecated in recent PyTorch
        loaded = torch.jit.load(str(tmp_path / "model.pt"), _extra_files=extra)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(batch), model.net(batch), atol=1e-4, rtol=0)
    assert json.loads(extra["preprocessing.json"])["class_names"] == list(CLASSES)


@pytest.mark.slow
def test_onnx_matches_pytorch_for_resnet18_with_batch_norm(tmp_path):
    arch = {
        "_target_": "mer_lightning.core.models.resnet.ResNet18Classifier",
        "num_classes": 7,
        "reduction_dim": 32,
        "input_size": 48,
    }
    net = build_net(arch).eval()
    for module in net.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    hparams = {
        "class_names": list(CLASSES),
        "image_size": 48,
        "mean": [0.4] * 3,
        "std": [0.2] * 3,
        "arch": arch,
    }
    state = {f"net.{key}": value for key, value in net.state_dict().items()}
    torch.save({"hyper_parameters": hparams, "state_dict": state}, tmp_path / "resnet.ckpt")

    model = load_checkpoint(tmp_path / "resnet.ckpt")
    path = export(model, "onnx", tmp_path / "export")
    batch = normalised_batch(model, 48, count=4)
    with torch.inference_mode():
        expected = net(batch)
    torch.testing.assert_close(onnx_logits(path, batch), expected, atol=1e-4, rtol=0)


def test_unknown_format_is_a_user_error(checkpoint, tmp_path):
    with pytest.raises(UserError, match="format=tflite is not one of"):
        run(compose_task("export", [f"ckpt={checkpoint}", "format=tflite"], tmp_path))


def test_preprocessing_says_to_average_the_mirror_when_the_run_was_tested_so(checkpoint):
    model = load_checkpoint(checkpoint)
    one_view = preprocessing(model)
    assert one_view["tta_hflip"] is False and one_view["postprocessing"] == "softmax"
    mirrored = preprocessing(dataclasses.replace(model, tta_hflip=True))
    assert mirrored["tta_hflip"] is True
    assert "horizontal mirror" in mirrored["postprocessing"]
    shifted = preprocessing(dataclasses.replace(model, tta_hflip=True, tta_shift=2))
    assert shifted["tta_shift"] == 2
    assert "moved by 2 pixels up, down, left and right" in shifted["postprocessing"]
    assert "mirror of each" in shifted["postprocessing"]
