"""Throughput of the project's own pipeline: the real Trainer, a plain loop, inference, data.

Everything is built from the composed config by `mer_lightning.runs.build.build`, so what is
timed is what `python -m mer_lightning` runs. The plain loop does the same work as the
Trainer (same module, data, batch augmentation, optimizer, precision and memory format)
without Lightning, so that the gap between the two is Lightning's loop overhead.
"""

import contextlib
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, open_dict

from mer_lightning.bench.timing import Budget, Loop, StepTimer, time_loop
from mer_lightning.runs.build import build


def seeded_build(cfg: DictConfig):
    """`runs.build.build` after seeding, as `train.run` does."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    return build(cfg)


def limit_fit(cfg: DictConfig, budget: Budget) -> None:
    """Let fit run just long enough for the budget: no validation, enough epochs."""
    with open_dict(cfg):
        cfg.trainer.max_steps = budget.warmup + budget.steps
        cfg.trainer.max_epochs = 10_000
        cfg.trainer.limit_val_batches = 0


def trainer_throughput(
    cfg: DictConfig, budget: Budget, companions: dict[str, Callable[[], Loop]] | None = None
) -> tuple[dict[str, Any], StepTimer]:
    """Steady-state training images/s through `Trainer.fit` with the configured callbacks.

    `companions` (see StepTimer) run interleaved with it; their times are in the returned
    timer's `companions`, the Trainer's peak RSS after warm-up in its `rss_mb`.
    """
    limit_fit(cfg, budget)
    start = time.perf_counter()
    datamodule, module, trainer = seeded_build(cfg)
    build_seconds = time.perf_counter() - start
    timer = StepTimer(budget, companions)
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    result = timer.times.summary()
    result.update(
        batch_size=datamodule.hparams.batch_size,
        precision=str(trainer.precision),
        device=str(trainer.strategy.root_device),
        build_seconds=build_seconds,
        split_sizes={
            "train": len(datamodule.train_indices),
            "val": len(datamodule.val_indices),
            "test": len(datamodule.test_images.labels),
        },
    )
    return result, timer


def autocast_for(precision: str, device: torch.device):
    """The autocast context Lightning's mixed-precision plugin uses, or a no-op."""
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    if precision == "16-mixed":
        return torch.autocast(device.type, dtype=torch.float16, cache_enabled=False)
    return contextlib.nullcontext()


def plain_loop(cfg: DictConfig) -> Loop:
    """A hand-written loop doing the Trainer's work, without Lightning.

    Same datamodule and loader, the datamodule's batch augmentation, the module's
    normalisation, net, memory format and loss, the configured optimizer and the Trainer's
    precision. What it leaves out is what Lightning adds: hooks, logging and metrics of
    the training step, the progress bar, checkpoint callbacks, and the LR schedule (a few
    multiplications per step).
    """
    datamodule, module, trainer = seeded_build(cfg)
    device = trainer.strategy.root_device
    precision = str(trainer.precision)
    module.to(device).train()
    optimizer = module.build_optimizer()

    def step(batch) -> None:
        batch = datamodule.transfer_batch_to_device(batch, device, 0)
        images, labels = datamodule.on_after_batch_transfer(batch, 0)
        optimizer.zero_grad()
        with autocast_for(precision, device):
            loss = module.loss(module(images), labels)
        loss.backward()
        optimizer.step()

    return Loop(step, datamodule.train_dataloader())


def inference_throughput(cfg: DictConfig, budget: Budget) -> dict[str, Any]:
    """Eval-mode images/s of the module on test batches (eval batch size, same precision)."""
    datamodule, module, trainer = seeded_build(cfg)
    device = trainer.strategy.root_device
    precision = str(trainer.precision)
    module.to(device).eval()

    def step(batch) -> None:
        images = batch[0].to(device)
        with torch.inference_mode(), autocast_for(precision, device):
            module(images)

    result = time_loop(step, datamodule.test_dataloader(), budget).summary()
    result.update(batch_size=datamodule.hparams.eval_batch_size, precision=precision)
    return result


def pipeline_throughput(cfg: DictConfig, budget: Budget) -> dict[str, Any]:
    """Images/s of the training data alone: the train DataLoader and its augmentation.

    With batched augmentation the loader yields plain batches and the datamodule augments
    them after transfer (`on_after_batch_transfer`); both are timed, nothing else.
    """
    datamodule, _, trainer = seeded_build(cfg)
    device = trainer.strategy.root_device

    def step(batch) -> None:
        batch = datamodule.transfer_batch_to_device(batch, device, 0)
        datamodule.on_after_batch_transfer(batch, 0)

    result = time_loop(step, datamodule.train_dataloader(), budget).summary()
    result.update(
        batch_size=datamodule.hparams.batch_size,
        num_workers=datamodule.hparams.num_workers,
        augmentation=augmentation_kind(datamodule),
    )
    return result


def augmentation_kind(datamodule) -> str:
    """Where the training augmentation runs: 'batched' on the device, or 'per-sample'."""
    return "batched" if getattr(datamodule, "batch_augmentation", None) else "per-sample"
