"""The train task: build everything from the config, fit, test the best checkpoint, report."""

import logging
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from mer_lightning.core.checkpoint import check_matches, training_steps
from mer_lightning.core.module import TrainingDiverged
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import write_predictions
from mer_lightning.recipes import refit
from mer_lightning.runs import reports, resume
from mer_lightning.runs.build import (
    best_checkpoint_callback,
    build_loggers,
    build_model,
    build_trainer,
    end_weight_averaging,
    find_callback,
    train_accuracy,
)
from mer_lightning.runs.config import run_identity
from mer_lightning.runs.console import print_config_tree
from mer_lightning.runs.history import EpochHistory
from mer_lightning.runs.results import FILE as RESULTS_FILE
from mer_lightning.runs.results import RunResults, write_results
from mer_lightning.runs.retests import run_retests
from mer_lightning.runs.validate import validate

log = logging.getLogger(__name__)


def output_dir() -> Path:
    """The Hydra run dir of this job."""
    return Path(HydraConfig.get().runtime.output_dir)


def run(cfg: DictConfig) -> RunResults:
    """Fit, test the best checkpoint and write every report into the run dir.

    Returns what metrics.json holds, so that sweepers can read the objective. With
    resume=true, a run that finished before returns its stored results untouched.
    """
    validate(cfg)
    run_dir = output_dir()
    finished = resume.finished_results(cfg, run_dir)
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
        trainer.loggers = build_loggers(cfg, resumed_at_step=training_steps(ckpt_path))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except TrainingDiverged as error:
        last = resume.last_checkpoint(trainer)
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint was saved"
        raise TrainingDiverged(f"{error}. Training stopped; {kept}") from error
    end_weight_averaging(trainer)
    # Read these now: validate/test with ckpt_path restore callback state from that checkpoint.
    timer = find_callback(trainer, Timer)
    fit_seconds = timer.time_elapsed("train") if timer else float("nan")
    history = list(find_callback(trainer, EpochHistory).epochs)
    images_seen = int(module.train_images_seen) * trainer.world_size
    epochs = trainer.current_epoch
    checkpoint = best_checkpoint_callback(trainer)
    best = (checkpoint.best_model_path if checkpoint else "") or None
    metrics: dict[str, float] = {}
    # fast_dev_run sets limit_val_batches to 1 even in a refit, which has no val split.
    validated = refit.validates(cfg) and trainer.limit_val_batches != 0
    tested = cfg.get("test_after_fit", True)
    if validated:
        metrics.update(
            trainer.validate(module, datamodule=datamodule, ckpt_path=best, weights_only=True)[0]
        )
    if tested:
        metrics.update(
            trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)[0]
        )
    metrics["train/acc"] = train_accuracy(trainer, module, datamodule, best)
    # Test rows alone only without a val split: teachers' rows tell which images they trained on.
    if tested and (validated or not refit.validates(cfg)):
        splits = ("val", "test") if validated else ("test",)
        write_predictions(run_dir / PREDICTIONS_FILE, trainer, module, datamodule, splits)

    results = RunResults(
        kind="train",
        **run_identity(cfg),
        classes=datamodule.class_names,
        metrics={key: float(value) for key, value in sorted(metrics.items())},
        data=datamodule.data_summary(),
        train_acc=metrics["train/acc"],
        val_acc=metrics.get("val/acc"),
        test_acc=metrics.get("test/acc"),
        test_f1_macro=metrics.get("test/f1_macro"),
        epochs=epochs,
        parameters=sum(p.numel() for p in module.net.parameters()),
        precision=str(trainer.precision),
        fit_seconds=fit_seconds,
        train_images_per_second=images_seen / fit_seconds if fit_seconds > 0 else None,
        train_images_seen=images_seen,
        best_checkpoint=str(Path(best).relative_to(run_dir)) if best else None,
        resumed_from=str(ckpt_path) if ckpt_path else None,
        history=history,
    )
    if trainer.is_global_zero:
        write_reports(run_dir, results, module.confusion_matrix if tested else None, trainer, cfg)
        if tested:
            run_retests(run_dir, cfg.get("retests") or [])
    return results


def write_reports(
    run_dir: Path, results: RunResults, confusion, trainer: L.Trainer, cfg: DictConfig
) -> None:
    """metrics.json, classification_report.txt, confusion_matrix.{csv,png}, training_curves.png
    and the hyperparameters with the headline numbers in TensorBoard."""
    reports.write_test_reports(run_dir, results, confusion, trainer.loggers)
    reports.save_figure(
        reports.training_curves_figure(results.history), run_dir / "training_curves.png"
    )
    write_results(run_dir / RESULTS_FILE, results)
    headline = {
        f"hp/{key}": value
        for key in ("train_acc", "val_acc", "test_acc", "test_f1_macro")
        if (value := getattr(results, key)) is not None
    }
    params = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics=headline)
        else:
            logger.log_hyperparams(params)
        logger.finalize("success")
