"""Runs without a validation split (`data.val_fraction=0`): a refit on every training image.

Once a recipe has been chosen on validation, the usual last step is to train it once more on
all of train/. Nothing is left to validate on, so nothing can pick a best epoch: the run keeps
its final epoch's weights as its checkpoint (`epochNNN.ckpt`, as any run's), tests them, and
its val/* metrics, curves and prediction rows are simply absent.
"""

import logging

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

VALIDATION_PREFIX = "val/"
# Lightning offers the epoch number to every ModelCheckpoint: the highest is the final epoch.
FINAL_EPOCH_MONITOR = "epoch"


def validates(cfg: DictConfig) -> bool:
    """Whether the run holds out a validation split (data.val_fraction above 0)."""
    return OmegaConf.select(cfg, "data.val_fraction", default=None) != 0


def _monitors_validation(callback: DictConfig | None) -> bool:
    monitor = callback.get("monitor") if callback else None
    return isinstance(monitor, str) and monitor.startswith(VALIDATION_PREFIX)


def run_callbacks(cfg: DictConfig) -> DictConfig:
    """cfg.callbacks, except that in a run without validation the checkpoint that would keep
    the best val/ score keeps the final epoch instead."""
    if validates(cfg):
        return cfg.callbacks
    adapted = cfg.callbacks.copy()
    checkpoint = adapted.get("model_checkpoint")
    if _monitors_validation(checkpoint):
        log.info(
            "data.val_fraction=0: no validation, so callbacks.model_checkpoint keeps the final "
            "epoch instead of the best %s",
            checkpoint.monitor,
        )
        with open_dict(checkpoint):
            checkpoint.monitor, checkpoint.mode = FINAL_EPOCH_MONITOR, "max"
    return adapted


def problems(cfg: DictConfig) -> list[str]:
    """Settings that need a validation split, in a run that has none; one line each."""
    stopping = OmegaConf.select(cfg, "callbacks.early_stopping")
    if validates(cfg) or not _monitors_validation(stopping):
        return []
    return [
        f"callbacks.early_stopping watches {stopping.monitor}, which data.val_fraction=0 does "
        "not produce: add callbacks.early_stopping=null, or hold out validation images "
        "(e.g. data.val_fraction=0.1)"
    ]


def objective_problem(cfg: DictConfig, sweeper: DictConfig) -> str | None:
    """An optimising sweeper (e.g. hparams_search=optuna) needs monitor.metric from every
    trial; a val/ metric does not exist without a validation split."""
    metric = str(OmegaConf.select(cfg, "monitor.metric", default=""))
    if validates(cfg) or "direction" not in sweeper or not metric.startswith(VALIDATION_PREFIX):
        return None
    return (
        f"the sweeper optimises monitor.metric={metric}, which data.val_fraction=0 does not "
        "produce: search with a validation split (e.g. data.val_fraction=0.1), then refit the "
        "winner on all of train/ with data.val_fraction=0"
    )
