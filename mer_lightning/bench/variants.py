"""The ways to speed training up that the issue asks to measure, one change each.

Every variant is the project's default config plus the overrides listed. Most run as
rungs of one ladder (`ladder.py`): plain loops of all of them, round-robin in one process,
so that their ratios to the default survive a shared machine's changing load. Variants
with DataLoader workers cannot share a process fairly (their workers would prefetch while
the other loops compute); each of those trains through the real Trainer in a process of
its own, next to a `default` control run measured the same way.
"""

from dataclasses import dataclass

CONTROL = "default"


@dataclass(frozen=True)
class Variant:
    """One change from the defaults: its Hydra overrides and what it measures."""

    name: str
    what: str
    overrides: tuple[str, ...]
    separate: bool = False  # own Trainer process instead of a ladder rung (DataLoader workers)
    pipeline: bool = False  # also time its data pipeline alone
    warmup: int | None = None  # warm-up steps, when the default does not suit
    steps: int | None = None  # timed steps, when the default does not suit


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "bf16",
            "bf16-mixed autocast (trainer.precision=bf16-mixed)",
            ("trainer.precision=bf16-mixed",),
            warmup=1,
            steps=2,
        ),
        Variant(
            "fp32",
            "fp32 throughout (trainer.precision=32-true); the control where auto picks bf16",
            ("trainer.precision=32-true",),
        ),
        Variant(
            "nchw",
            "NCHW (channels-first) memory format instead of channels_last",
            ("module.channels_last=false",),
        ),
        Variant(
            "compile",
            "torch.compile of the net, on top of channels_last",
            ("module.compile=true",),
        ),
        Variant(
            "compile_nchw",
            "torch.compile of the net, with NCHW",
            ("module.compile=true", "module.channels_last=false"),
        ),
        Variant(
            "unfused_adam",
            "Adam's per-parameter for-loop instead of the fused kernel",
            ("module.optimizer.fused=false",),
        ),
        Variant(
            "per_sample_aug",
            "per-sample torchvision v2 augmentation in the loader instead of batched",
            ("data.batch_augment=false",),
            pipeline=True,
        ),
        Variant(
            "workers2",
            "batched augmentation, loader in 2 worker processes",
            ("data.num_workers=2",),
            separate=True,
            pipeline=True,
        ),
        Variant(
            "per_sample_aug_workers2",
            "per-sample augmentation in 2 DataLoader worker processes",
            ("data.batch_augment=false", "data.num_workers=2"),
            separate=True,
            pipeline=True,
        ),
    )
}
DEFAULT_VARIANTS = tuple(VARIANTS)
