"""Where a training step's time goes, and how fast its convolution and matmul kernels run.

MFU says how far the whole step is from the matmul peak; this says why. A few steps of the
plain loop (the Trainer's work without Lightning) run under torch.profiler, and one step
under FlopCounterMode; dividing each kernel group's FLOPs by its time gives the GFLOP/s
that the convolution forward, convolution backward and matmul kernels reach on their own.
The rest of the step (ReLU, pooling, optimizer, data) does no counted FLOPs.
"""

import time
from typing import Any

from omegaconf import DictConfig
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from mer_lightning.bench.training import plain_loop

# Kernel groups: profiler event names (inclusive time) and FlopCounterMode op names.
GROUPS = {
    "conv forward": (("aten::convolution",), ("convolution",)),
    "conv backward": (("aten::convolution_backward",), ("convolution_backward",)),
    "matmul": (("aten::mm", "aten::addmm"), ("mm", "addmm")),
}


def kernel_breakdown(cfg: DictConfig, steps: int = 3, warmup: int = 2) -> dict[str, Any]:
    """Per kernel group: share of the step time, GFLOP per step and achieved GFLOP/s."""
    loop = plain_loop(cfg)
    for _ in range(warmup):
        loop.run_step(timed=False)
    with FlopCounterMode(display=False) as counter:
        loop.run_step(timed=False)
    flops = {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            loop.run_step(timed=False)
    wall = (time.perf_counter() - start) / steps
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        totals[event.key] = totals.get(event.key, 0.0) + event.cpu_time_total / 1e6
    groups: dict[str, Any] = {}
    for name, (events, ops) in GROUPS.items():
        seconds = sum(totals.get(e, 0.0) for e in events) / steps
        group_flops = sum(flops.get(op, 0) for op in ops)
        groups[name] = {
            "seconds_per_step": seconds,
            "share_of_step": seconds / wall if wall > 0 else None,
            "gflop_per_step": group_flops / 1e9,
            "gflops": group_flops / seconds / 1e9 if seconds > 0 else None,
        }
    counted = sum(g["seconds_per_step"] for g in groups.values())
    groups["everything else"] = {
        "seconds_per_step": max(wall - counted, 0.0),
        "share_of_step": max(wall - counted, 0.0) / wall if wall > 0 else None,
        "gflop_per_step": 0.0,
        "gflops": None,
    }
    return {"step_seconds_profiled": wall, "steps": steps, "groups": groups}
