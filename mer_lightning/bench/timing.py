"""Steady-state timing: per-step wall times after a warm-up, turned into images per second.

The first steps of any loop pay one-off costs (allocator growth, oneDNN kernel selection,
torch.compile, worker start-up), so they are timed but left out. A measurement stops after
`steps` timed steps or once `max_seconds` are spent with at least `min_steps` timed, which
keeps a slow configuration (bf16 without hardware support) from running for many minutes.

Loops that are compared with each other (the Trainer, the plain loop, the reference
recipe) run interleaved, one step each in turn, in one process: on a machine shared with
other jobs, a slowdown then hits all of them alike and their ratio stays meaningful.
"""

import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lightning as L


@dataclass
class Budget:
    """How long to measure: warm-up steps, timed steps, and a time cap on the timed part."""

    warmup: int = 3
    steps: int = 15
    max_seconds: float = 60.0
    min_steps: int = 2

    def done(self, timed_steps: int, timed_seconds: float) -> bool:
        """True once enough timed steps ran, or the time cap is reached."""
        if timed_steps >= self.steps:
            return True
        return timed_steps >= self.min_steps and timed_seconds >= self.max_seconds


@dataclass
class StepTimes:
    """Wall time and images of each timed step (warm-up steps excluded)."""

    seconds: list[float] = field(default_factory=list)
    images: list[int] = field(default_factory=list)
    warmup_seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float, images: int) -> None:
        self.seconds.append(seconds)
        self.images.append(images)

    def summary(self) -> dict[str, Any]:
        """Images/s of the median step, the mean over all timed steps, and step statistics.

        The median is the headline: on a shared machine other processes only ever slow a
        step down, and the median ignores the few steps they hit. The mean (total images
        over total time) also counts epoch boundaries; the protocol estimate uses it.
        """
        total = sum(self.seconds)
        rates = [n / s for n, s in zip(self.images, self.seconds, strict=True) if s > 0]
        return {
            "images_per_s": statistics.median(rates) if rates else None,
            "images_per_s_mean": sum(self.images) / total if total > 0 else None,
            "steps": len(self.seconds),
            "images": sum(self.images),
            "seconds": total,
            "step_s_median": statistics.median(self.seconds) if self.seconds else None,
            "step_s_min": min(self.seconds) if self.seconds else None,
            "step_s_max": max(self.seconds) if self.seconds else None,
            "warmup_steps": len(self.warmup_seconds),
            "warmup_seconds": sum(self.warmup_seconds),
        }


def batch_size_of(batch: Any) -> int:
    """Images in a (images, labels[, ...]) batch."""
    return len(batch[0])


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux)."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class Loop:
    """A hand-written loop that runs one step at a time: fetch a batch, `step(batch)`.

    Each step's time covers fetching the batch too, as in a real training loop. The
    batches are cycled, so a loop can run for longer than one epoch.
    """

    def __init__(self, step: Callable[[Any], None], batches: Iterable) -> None:
        self.step = step
        self.iterator = _cycle(batches)
        self.times = StepTimes()

    def run_step(self, timed: bool = True) -> None:
        start = time.perf_counter()
        batch = next(self.iterator)
        self.step(batch)
        elapsed = time.perf_counter() - start
        if timed:
            self.times.add(elapsed, batch_size_of(batch))
        else:
            self.times.warmup_seconds.append(elapsed)


def time_loop(step: Callable[[Any], None], batches: Iterable, budget: Budget) -> StepTimes:
    """Time `step(batch)` over `batches` on its own: warm-up steps, then the budget."""
    loop = Loop(step, batches)
    for _ in range(budget.warmup):
        loop.run_step(timed=False)
    while not budget.done(len(loop.times.seconds), sum(loop.times.seconds)):
        loop.run_step()
    return loop.times


def _cycle(batches: Iterable) -> Iterator:
    """Iterate `batches` again and again (a new epoch of a DataLoader each time)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yielded no batches")


class StepTimer(L.Callback):
    """Times training steps of a real Trainer, end of one batch to end of the next.

    That interval holds everything the loop does per step: fetching and transferring the
    batch, the batch hooks, forward, backward, optimizer, logging, the progress bar and
    the checkpoint callbacks. It asks the Trainer to stop once the budget is used up.

    `companions` are factories of other `Loop`s to compare with: they are built when the
    Trainer's warm-up ends (right after `rss_mb`, the process's peak RSS, is read, so that
    it is the Trainer's alone), warmed up, and then step once after each timed Trainer
    step, outside the Trainer's clock.
    """

    def __init__(
        self, budget: Budget, companions: dict[str, Callable[[], Loop]] | None = None
    ) -> None:
        self.budget = budget
        self.times = StepTimes()
        self.companion_factories = companions or {}
        self.companions: dict[str, Loop] = {}
        self.rss_mb: float | None = None
        self._last: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._last is None:  # the first step: start the clock before it (data already in)
            if self.budget.warmup == 0:
                self._start_companions()
            self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if len(self.times.warmup_seconds) < self.budget.warmup:
            self.times.warmup_seconds.append(now - self._last)
            if len(self.times.warmup_seconds) == self.budget.warmup:
                self._start_companions()
        else:
            self.times.add(now - self._last, batch_size_of(batch))
            for loop in self.companions.values():
                loop.run_step()
        if self.budget.done(len(self.times.seconds), sum(self.times.seconds)):
            trainer.should_stop = True
        self._last = time.perf_counter()

    def _start_companions(self) -> None:
        self.rss_mb = peak_rss_mb()
        for name, make in self.companion_factories.items():
            loop = make()
            for _ in range(self.budget.warmup):
                loop.run_step(timed=False)
            self.companions[name] = loop
