"""trainer.precision=auto resolves per device; explicit values are kept."""

import torch

from mer_lightning.runs import precision as speed


def test_explicit_values_are_kept():
    assert speed.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert speed.resolve_precision("32-true", "gpu") == "32-true"


def test_auto_on_cpu_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)
    assert speed.resolve_precision("auto", "cpu") == "32-true"
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    assert speed.resolve_precision("auto", "cpu") == "bf16-mixed"


def test_auto_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert speed.target_device("auto") == "cuda"
    assert speed.resolve_precision("auto", "auto") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert speed.resolve_precision("auto", "gpu") == "16-mixed"


def test_auto_without_gpu_is_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(speed, "_mps_available", lambda: False)
    assert speed.target_device("auto") == "cpu"
