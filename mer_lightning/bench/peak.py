"""The machine's measured matmul peak: the ceiling that model-FLOP utilisation is read against.

A large square matmul is the fastest thing the BLAS/oneDNN kernels do, so its GFLOP/s is a
practical upper bound for any conv net trained with the same kernels and threads. fp32 and
bf16 are measured separately: a CPU without native bf16 (no AVX512-BF16 or AMX) runs bf16
matmuls through a slow fallback, which decides whether bf16 autocast can pay off there.
"""

import time

import torch


def matmul_gflops(size: int, dtype: torch.dtype, seconds: float, device: str = "cpu") -> float:
    """GFLOP/s of repeated (size x size) @ (size x size) products, best of timed repeats.

    Runs for about `seconds` after one untimed call (at least two timed calls). The best
    repeat, not the mean, is the peak: other processes on a shared machine only slow it.
    """
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.matmul(a, b)
    _sync(device)
    best, spent, calls = 0.0, 0.0, 0
    while calls < 2 or spent < seconds:
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        elapsed = time.perf_counter() - start
        spent += elapsed
        calls += 1
        best = max(best, 2.0 * size**3 / elapsed / 1e9)
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_peak(
    fp32_sizes: tuple[int, ...] = (1024, 2048),
    bf16_sizes: tuple[int, ...] = (256, 512),
    seconds: float = 3.0,
    device: str = "cpu",
) -> dict:
    """Best fp32 and bf16 matmul GFLOP/s over a few sizes (bf16 sizes are kept small
    because a CPU without native bf16 takes seconds per product)."""
    fp32 = {n: matmul_gflops(n, torch.float32, seconds, device) for n in fp32_sizes}
    bf16 = {n: matmul_gflops(n, torch.bfloat16, seconds, device) for n in bf16_sizes}
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "fp32_gflops": max(fp32.values()),
        "bf16_gflops": max(bf16.values()),
        "fp32_by_size": {str(n): v for n, v in fp32.items()},
        "bf16_by_size": {str(n): v for n, v in bf16.items()},
        "native_bf16": native_bf16(device),
        "seconds_per_size": seconds,
    }


def native_bf16(device: str = "cpu") -> bool:
    """True when bf16 has hardware support on `device` (AVX512-BF16/AMX on CPU, Ampere+ GPU)."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
