"""A run's parts built from its composed config: what training, evaluate and the benchmarks
share. The datamodule reads and splits the dataset; the model is sized to its classes; the
Trainer carries the config's callbacks (recipes among them) and loggers."""

import logging
import warnings
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig
from torchmetrics.functional.classification import multiclass_accuracy

from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.models import build_net, net_config
from mer_lightning.core.module import EmotionClassifier
from mer_lightning.recipes import refit
from mer_lightning.recipes.class_weights import resolve_class_weights
from mer_lightning.runs.history import EpochHistory
from mer_lightning.runs.precision import resolve_precision

log = logging.getLogger(__name__)


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The Trainer with its callbacks and loggers; it needs no data, so checks on the run dir
    can use its checkpoint folders before the dataset is read."""
    callback_cfgs = refit.run_callbacks(cfg).values()
    callbacks = [hydra.utils.instantiate(c) for c in callback_cfgs if c is not None]
    loggers = build_loggers(cfg)
    precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if str(cfg.trainer.precision) == "auto":
        log.info("trainer.precision=auto: %s on this device", precision)
    no_validation = {} if refit.validates(cfg) else {"limit_val_batches": 0}
    return hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[*callbacks, EpochHistory()],
        logger=loggers or False,
        precision=precision,
        **no_validation,
    )


def build_loggers(cfg: DictConfig, resumed_at_step: int | None = None) -> list[Logger]:
    """The loggers of `cfg.logger`. For a run continued from a checkpoint saved at
    `resumed_at_step`, TensorBoard drops what the killed run logged from that step on
    (`purge_step`), so each curve runs once over its steps instead of twice."""
    loggers = []
    for logger_cfg in (cfg.logger or {}).values():
        if logger_cfg is None:
            continue
        tensorboard = issubclass(hydra.utils.get_class(logger_cfg._target_), TensorBoardLogger)
        purge = {"purge_step": resumed_at_step} if tensorboard and resumed_at_step else {}
        loggers.append(hydra.utils.instantiate(logger_cfg, **purge))
    return loggers


def build_datamodule(cfg: DictConfig) -> MicroExpressionDataModule:
    """The datamodule of `cfg.data`, with the dataset read and the validation split drawn."""
    datamodule: MicroExpressionDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig) -> tuple[MicroExpressionDataModule, EmotionClassifier]:
    """The datamodule (dataset read and split) and the model sized to its classes."""
    datamodule = build_datamodule(cfg)
    arch = net_config(cfg.model, datamodule.num_classes)
    # A partial, so that arch (a dict with its own _target_) reaches the module as data.
    module_factory = hydra.utils.instantiate(cfg.module, _partial_=True, _convert_="all")
    module: EmotionClassifier = module_factory(
        net=build_net(arch),
        class_names=datamodule.class_names,
        class_weights=resolve_class_weights(
            cfg.module.class_weights, datamodule.train_class_counts(), datamodule.class_names
        ),
        mean=list(cfg.data.mean),
        std=list(cfg.data.std),
        image_size=cfg.data.image_size,
        arch=arch,
    )
    return datamodule, module


def build(cfg: DictConfig) -> tuple[MicroExpressionDataModule, EmotionClassifier, L.Trainer]:
    """Instantiate the datamodule, the model and the Trainer from a composed config."""
    trainer = build_trainer(cfg)
    return *build_model(cfg), trainer


def end_weight_averaging(trainer: L.Trainer) -> None:
    """Score checkpoints after fit by the weights they were chosen on.

    A WeightAveraging callback (callbacks.weight_averaging) validates on the averaged weights
    and saves them as the checkpoint's state_dict, but while attached it would load the raw
    weights back on every validate, test or predict with a ckpt_path.
    """
    averaging = [cb for cb in trainer.callbacks if isinstance(cb, WeightAveraging)]
    trainer.callbacks = [cb for cb in trainer.callbacks if cb not in averaging]
    for name in {type(cb).__name__ for cb in averaging}:
        # Lightning asks for the callback back when loading; left out on purpose here.
        warnings.filterwarnings("ignore", message=rf".*following callbacks: \['{name}'\]")


def find_callback(trainer: L.Trainer, kind: type) -> Any:
    """The Trainer's first callback of type `kind`, or None."""
    found = [cb for cb in trainer.callbacks if isinstance(cb, kind)]
    return found[0] if found else None


def best_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The ModelCheckpoint that tracks the monitored metric (others only refresh last.ckpt)."""
    found = [cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)]
    return found[0] if found else None


def train_accuracy(trainer: L.Trainer, module, datamodule, ckpt_path) -> float:
    """Accuracy of the fitted model on the training split in eval mode, without augmentation."""
    outputs = trainer.predict(
        module,
        dataloaders=datamodule.train_eval_dataloader(),
        ckpt_path=ckpt_path,
        weights_only=True,
    )
    preds = torch.cat([p for p, _ in outputs]).argmax(dim=1)
    labels = torch.cat([y for _, y in outputs])
    if trainer.world_size == 1:
        return float(multiclass_accuracy(preds, labels, datamodule.num_classes, average="micro"))
    # DDP: each process predicted its own shard (unrepeated); add up the counts of all of them.
    counts = torch.tensor([(preds == labels).sum(), labels.numel()], device=module.device)
    correct, total = trainer.strategy.reduce(counts, reduce_op="sum").tolist()
    return correct / total
