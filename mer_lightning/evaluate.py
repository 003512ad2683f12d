"""`python -m mer_lightning.evaluate DIR [overrides]`: test finished runs again, without training.

DIR is a run dir (it has metrics.json) or a multirun dir (each job's). Each run's best
checkpoint is tested on the test split as the run's own overrides plus the given ones
define it, e.g. `data.dedup=true` for the test set without the copies of train images.
Results go to `<run>/evaluate/<overrides>/`: metrics.json, classification_report.txt,
confusion_matrix.{csv,png} and predictions.csv (test images; val too, and its accuracy,
unless an override changes data.*, which may draw another val split), and a table of all runs
to `DIR/evaluation_<overrides>.csv`; each split is scored once;
the run's own files are never touched. A run evaluated before with the same overrides keeps
its results (they are reused, not redone), so the same command after more jobs of a sweep
have finished evaluates just those. Exit status 2 for bad input.
"""

import argparse
import csv
import logging
import sys
from pathlib import Path

from omegaconf import open_dict
from rich.console import Console
from rich.table import Table

from mer_lightning.core.checkpoint import check_matches
from mer_lightning.core.errors import UserError
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import write_predictions
from mer_lightning.runs.build import build, end_weight_averaging
from mer_lightning.runs.config import output_name, recompose_run_config
from mer_lightning.runs.console import command_name, exit_on_user_error, help_epilog
from mer_lightning.runs.reports import write_test_reports
from mer_lightning.runs.results import FILE as RESULTS_FILE
from mer_lightning.runs.results import RunResults, read_results, write_results

log = logging.getLogger(__name__)


def finished_runs(path: Path) -> list[Path]:
    """The run dir itself, or the job dirs of a multirun dir, that hold a metrics.json."""
    if not path.is_dir():
        raise UserError(
            f"{path} is not a directory; give a finished run dir (outputs/runs/...) or "
            "multirun dir (outputs/multirun/...)"
        )
    if (path / "metrics.json").is_file():
        return [path]
    runs = sorted(p.parent for p in path.glob("*/metrics.json"))
    if not runs:
        raise UserError(
            f"{path} has no metrics.json and no job dir with one; give a finished run dir "
            "(outputs/runs/...) or multirun dir (outputs/multirun/...)"
        )
    return runs


def best_checkpoint(run_dir: Path) -> tuple[RunResults, Path]:
    """A finished run's results and the best checkpoint they name, which must exist."""
    trained = read_results(run_dir / RESULTS_FILE)
    if not trained.best_checkpoint:
        raise UserError(f"{run_dir}/metrics.json names no best checkpoint: nothing to test")
    checkpoint = run_dir / trained.best_checkpoint
    if not checkpoint.is_file():
        raise UserError(
            f"{checkpoint} is missing (named by {run_dir}/metrics.json); restore it, rerun "
            "the training, or move the run out of the dir given"
        )
    return trained, checkpoint


def keeps_val_split(overrides: list[str]) -> bool:
    """Whether the run's validation split survives `overrides`: any data.* override (e.g.
    data.dedup=true) may draw another split, holding images the run trained on, so only
    re-tests that leave data.* alone (e.g. module.tta_hflip=true) are scored on val too."""
    keys = (override.lstrip("+~").split("=", 1)[0] for override in overrides)
    return not any(key == "data" or key.startswith("data.") for key in keys)


def evaluate_run(run_dir: Path, overrides: list[str]) -> RunResults:
    """Test `run_dir`'s best checkpoint with its overrides plus `overrides`; the results."""
    trained, checkpoint = best_checkpoint(run_dir)
    out = run_dir / "evaluate" / output_name(overrides)
    if (out / RESULTS_FILE).is_file():
        log.info("%s: evaluated before with these overrides; reusing its metrics.json", run_dir)
        return read_results(out / RESULTS_FILE)
    if out.exists():
        raise UserError(
            f"{out} exists without metrics.json (an evaluation that stopped midway): "
            "remove it to evaluate again"
        )
    cfg = recompose_run_config(run_dir, overrides, out)
    with open_dict(cfg):
        cfg.logger = None  # the run's TensorBoard log stays as training left it
        cfg.callbacks.distill = None  # testing trains nothing: no teachers to load
    datamodule, module, trainer = build(cfg)
    end_weight_averaging(trainer)
    check_matches(checkpoint, module.hparams.arch, list(module.hparams.class_names))
    scores_val = keeps_val_split(overrides) and trainer.limit_val_batches != 0
    splits = ("val", "test") if scores_val else ("test",)
    metrics: dict[str, float] = {}
    for split in splits:
        loop = trainer.validate if split == "val" else trainer.test
        metrics.update(
            loop(module, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)[0]
        )
    write_predictions(out / PREDICTIONS_FILE, trainer, module, datamodule, splits)
    results = RunResults(
        kind="evaluate",
        model=trained.model,
        seed=trained.seed,
        classes=datamodule.class_names,
        metrics={key: float(value) for key, value in sorted(metrics.items())},
        data=datamodule.data_summary(),
        val_acc=metrics.get("val/acc"),
        test_acc=metrics["test/acc"],
        test_f1_macro=metrics["test/f1_macro"],
        run_dir=str(run_dir),
        checkpoint=trained.best_checkpoint,
        overrides=overrides,
        trained_test_acc=trained.test_acc,
    )
    write_test_reports(out, results, module.confusion_matrix)
    write_results(out / RESULTS_FILE, results)
    return results


SUMMARY_COLUMNS = (
    "run",
    "model",
    "seed",
    "test_images",
    "trained_test_acc",
    "test_acc",
    "test_f1_macro",
    "val_acc",
)


def write_summary(path: Path, results: list[RunResults]) -> None:
    """One CSV row per evaluated run: test accuracy as trained and as evaluated, and val
    accuracy as evaluated (empty where data.* overrides leave val out)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUMMARY_COLUMNS)
        for r in results:
            writer.writerow(
                [
                    Path(r.run_dir).name,
                    r.model,
                    r.seed,
                    r.data["test_images"],
                    r.trained_test_acc,
                    r.test_acc,
                    r.test_f1_macro,
                    r.val_acc,
                ]
            )


def print_table(results: list[RunResults], overrides: list[str]) -> None:
    """Test accuracy as trained and as evaluated, and val accuracy as evaluated, one row per
    run."""
    table = Table(title=f"Test accuracy, as trained and with {' '.join(overrides) or 'no change'}")
    columns = (
        "run",
        "model",
        "seed",
        "test images",
        "trained test acc",
        "evaluated acc",
        "val acc",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "model") else "right")
    for r in results:
        before = r.trained_test_acc
        table.add_row(
            Path(r.run_dir).name,
            r.model,
            str(r.seed),
            str(r.data["test_images"]),
            "-" if before is None else f"{100 * before:.2f} %",
            f"{100 * r.test_acc:.2f} %",
            "-" if r.val_acc is None else f"{100 * r.val_acc:.2f} %",
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Evaluate every finished run under DIR; exit status 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog=command_name("mer_lightning.evaluate", "mer-evaluate"),
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=help_epilog(
            "mer-evaluate",
            "mer_lightning.evaluate",
            "outputs/multirun/2024-05-01/10-00-00-123456 data.dedup=true",
            "outputs/runs/2024-05-01/10-00-00-123456_cnn1 module.tta_hflip=true",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="a run dir or a multirun dir")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.dedup=true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with exit_on_user_error():
        results = [evaluate_run(run, args.overrides) for run in finished_runs(args.dir)]
        print_table(results, args.overrides)
        summary = args.dir / f"evaluation_{output_name(args.overrides)}.csv"
        write_summary(summary, results)
        print(f"written {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
