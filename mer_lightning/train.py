"""The train task: build everything from the config, fit, test the best checkpoint, report."""

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint, Timer, WeightAveraging
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from torchmetrics.functional.classification import multiclass_accuracy

from mer_lightning.core.checkpoint import check_matches
from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.models import build_net, net_config
from mer_lightning.core.module import EmotionClassifier, TrainingDiverged
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import write_predictions
from mer_lightning.recipes import refit
from mer_lightning.recipes.class_weights import resolve_class_weights
from mer_lightning.recipes.distill import load_distillation
from mer_lightning.runs import reports, resume
from mer_lightning.runs.config import run_identity
from mer_lightning.runs.console import print_config_tree
from mer_lightning.runs.history import EpochHistory
from mer_lightning.runs.precision import resolve_precision
from mer_lightning.runs.validate import validate

log = logging.getLogger(__name__)


def output_dir() -> Path:
    """The Hydra run dir of this job."""
    return Path(HydraConfig.get().runtime.output_dir)


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The Trainer with its callbacks and loggers; it needs no data, so checks on the run dir
    can use its checkpoint folders before the dataset is read."""
    callback_cfgs = refit.run_callbacks(cfg).values()
    callbacks = [hydra.utils.instantiate(c) for c in callback_cfgs if c is not None]
    loggers = [hydra.utils.instantiate(lg) for lg in (cfg.logger or {}).values() if lg is not None]
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
        distill=load_distillation(
            cfg.module.get("distill"),
            class_names=datamodule.class_names,
            image_size=cfg.data.image_size,
            val_files=datamodule.split_files("val"),
        ),
    )
    return datamodule, module


def build(cfg: DictConfig) -> tuple[MicroExpressionDataModule, EmotionClassifier, L.Trainer]:
    """Instantiate the datamodule, the model and the Trainer from a composed config."""
    trainer = build_trainer(cfg)
    return *build_model(cfg), trainer


def write_test_reports(out_dir: Path, summary: dict, confusion, loggers: Sequence = ()) -> None:
    """classification_report.txt and confusion_matrix.{csv,png} of a test; fills
    summary["per_class"]. Also the confusion matrix figure in the TensorBoard loggers."""
    if confusion is None:
        return
    names = summary["classes"]
    summary["per_class"] = reports.per_class_table(summary["metrics"], confusion, names, "test")
    text = reports.classification_report(summary["metrics"], summary["per_class"], "test")
    (out_dir / "classification_report.txt").write_text(text)
    log.info("test classification report:\n%s", text)
    reports.write_confusion_csv(out_dir / "confusion_matrix.csv", confusion, names)
    figure = reports.confusion_figure(confusion, names)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure("test/confusion_matrix", figure, close=False)
    reports.save_figure(figure, out_dir / "confusion_matrix.png")


def _callback(trainer: L.Trainer, kind: type) -> Any:
    found = [cb for cb in trainer.callbacks if isinstance(cb, kind)]
    return found[0] if found else None


def _best_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
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


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test the best checkpoint and write every report into the run dir.

    Returns the contents of metrics.json, so that sweepers can read the objective. With
    resume=true, a run that finished before returns its stored metrics.json untouched.
    """
    validate(cfg)
    run_dir = output_dir()
    finished = resume.finished_summary(cfg, run_dir)
    if finished is not None:
        return finished
    if cfg.get("print_config"):
        print_config_tree(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    trainer = build_trainer(cfg)
    resume.refuse_to_overwrite(cfg, trainer, run_dir)
    datamodule, module = build_model(cfg)
    log.info("%s", datamodule.audit.summary())
    if datamodule.hparams.dedup:
        log.info(
            "data.dedup=true: left out %(test_cross_split)d test images that are copies of "
            "train images and %(train_conflicting_labels)d train images whose copies carry "
            "other labels",
            datamodule.dropped,
        )

    ckpt_path = resume.fit_checkpoint(cfg, trainer)
    if ckpt_path is not None:
        check_matches(ckpt_path, module.hparams.arch, list(module.hparams.class_names))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except TrainingDiverged as error:
        last = resume.last_checkpoint(trainer)
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint was saved"
        raise TrainingDiverged(f"{error}. Training stopped; {kept}") from error
    end_weight_averaging(trainer)
    # Read these now: validate/test with ckpt_path restore callback state from that checkpoint.
    timer = _callback(trainer, Timer)
    fit_seconds = timer.time_elapsed("train") if timer else float("nan")
    history = list(_callback(trainer, EpochHistory).epochs)
    images_seen = int(module.train_images_seen) * trainer.world_size
    epochs = trainer.current_epoch
    checkpoint = _best_checkpoint_callback(trainer)
    best = (checkpoint.best_model_path if checkpoint else "") or None
    results: dict[str, float] = {}
    # fast_dev_run sets limit_val_batches to 1 even in a refit, which has no val split.
    validated = refit.validates(cfg) and trainer.limit_val_batches != 0
    if validated:
        results.update(
            trainer.validate(module, datamodule=datamodule, ckpt_path=best, weights_only=True)[0]
        )
    confusion = None
    if cfg.get("test_after_fit", True):
        results.update(
            trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)[0]
        )
        confusion = module.confusion_matrix
    results["train/acc"] = train_accuracy(trainer, module, datamodule, best)
    # Test rows alone only without a val split: teachers' rows tell which images they trained on.
    if cfg.get("test_after_fit", True) and (validated or not refit.validates(cfg)):
        splits = ("val", "test") if validated else ("test",)
        write_predictions(run_dir / PREDICTIONS_FILE, trainer, module, datamodule, splits)

    summary = {
        **run_identity(cfg),
        "epochs": epochs,
        "parameters": sum(p.numel() for p in module.net.parameters()),
        "precision": str(trainer.precision),
        "fit_seconds": fit_seconds,
        "train_images_per_second": images_seen / fit_seconds if fit_seconds > 0 else None,
        "train_images_seen": images_seen,
        "train_acc": results["train/acc"],
        "val_acc": results.get("val/acc"),
        "test_acc": results.get("test/acc"),
        "test_f1_macro": results.get("test/f1_macro"),
        "classes": datamodule.class_names,
        "best_checkpoint": str(Path(best).relative_to(run_dir)) if best else None,
        "resumed_from": str(ckpt_path) if ckpt_path else None,
        "data": datamodule.data_summary(),
        "metrics": {key: float(value) for key, value in sorted(results.items())},
        "per_class": None,
        "history": history,
    }
    if trainer.is_global_zero:
        write_reports(run_dir, summary, confusion, trainer, cfg)
    return summary


def write_reports(run_dir: Path, summary: dict, confusion, trainer: L.Trainer, cfg) -> None:
    """metrics.json, classification_report.txt, confusion_matrix.{csv,png}, training_curves.png."""
    write_test_reports(run_dir, summary, confusion, trainer.loggers)
    reports.save_figure(
        reports.training_curves_figure(summary["history"]), run_dir / "training_curves.png"
    )
    reports.write_json(run_dir / "metrics.json", summary)
    headline = {
        f"hp/{key}": summary[key]
        for key in ("train_acc", "val_acc", "test_acc", "test_f1_macro")
        if summary[key] is not None
    }
    params = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(params, metrics=headline) if isinstance(
            logger, TensorBoardLogger
        ) else logger.log_hyperparams(params)
        logger.finalize("success")
