"""Resolve `trainer.precision=auto` to the fastest precision that keeps accuracy on the device.

bf16-mixed where bf16 has hardware support (CUDA GPUs from Ampere on; CPUs with
AVX512-BF16 or AMX), 16-mixed on older CUDA GPUs, 32-true elsewhere. On a CPU without
native bf16, bf16 autocast falls back to slow kernels, many times slower than fp32
(`python -m mer_lightning.bench`, docs/benchmarks/training.md), so fp32 is the fast choice
there. An explicit value (`trainer.precision=32-true`) is kept.
"""

import torch

AUTO = "auto"


def target_device(accelerator: str) -> str:
    """The device type Lightning picks for `trainer.accelerator`: cuda, mps, cpu, ..."""
    accelerator = str(accelerator).lower()
    if accelerator in (AUTO, "gpu"):
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu" if accelerator == AUTO else "cuda"
    return accelerator


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fastest_precision(device: str) -> str:
    """The Lightning precision for `device` when trainer.precision=auto."""
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu" and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"


def resolve_precision(precision, accelerator: str):
    """`precision` unless it is auto, else the fastest for the accelerator's device."""
    if str(precision) != AUTO:
        return precision
    return fastest_precision(target_device(accelerator))
