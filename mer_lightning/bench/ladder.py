"""Speed-up variants side by side: plain loops of several configs, one step each in turn.

Each variant is the default config plus some overrides, built with the project's own
`runs.build.build` and run as the plain loop (the Trainer's work without Lightning; the summary
shows the two within a few percent). Running them round-robin in one process means that
a slowdown from other jobs on a shared machine hits every variant alike, so the ratios to
the default hold even when absolute rates drift. Loops that use DataLoader workers are
not measured this way: their workers would prefetch while the other loops compute.
"""

from pathlib import Path
from typing import Any

from mer_lightning.bench.timing import Budget, Loop
from mer_lightning.bench.training import plain_loop
from mer_lightning.runs.config import compose_run_config


def measure_ladder(
    model: str,
    overrides: list[str],
    rungs: dict[str, dict[str, Any]],
    budget: Budget,
    workdir: Path,
) -> dict[str, dict[str, Any]]:
    """Round-robin timing of one plain loop per rung; returns each rung's step summary.

    `rungs` maps a name to {"overrides": [...], optional "warmup" and "steps"}; a rung
    stops taking turns once its own budget is used up.
    """
    loops: dict[str, tuple[Loop, Budget]] = {}
    for name, rung in rungs.items():
        cfg = compose_run_config([f"model={model}", *overrides, *rung["overrides"]], workdir / name)
        own = Budget(
            warmup=rung.get("warmup") if rung.get("warmup") is not None else budget.warmup,
            steps=rung.get("steps") if rung.get("steps") is not None else budget.steps,
            max_seconds=budget.max_seconds,
            min_steps=budget.min_steps,
        )
        loop = plain_loop(cfg)
        for _ in range(own.warmup):
            loop.run_step(timed=False)
        loops[name] = (loop, own)
    active = dict(loops)
    while active:
        for name, (loop, own) in list(active.items()):
            loop.run_step()
            if own.done(len(loop.times.seconds), sum(loop.times.seconds)):
                del active[name]
    return {name: loop.times.summary() for name, (loop, _) in loops.items()}
