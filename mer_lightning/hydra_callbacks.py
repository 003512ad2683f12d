"""Hydra callbacks of `python -m mer_lightning` (registered in conf/hydra/default.yaml)."""

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepChecks(Callback):
    """Stop a multirun before its first job when no job could give the sweeper its objective
    (e.g. hparams_search=optuna with data.val_fraction=0), instead of failing every trial."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mer_lightning.recipes.refit import objective_problem
        from mer_lightning.runs.console import print_user_error

        if problem := objective_problem(config, config.hydra.sweeper):
            print_user_error(problem)
            raise SystemExit(2)


class ComparisonReport(Callback):
    """When a multirun ends, write the model comparison into its dir and print it.

    Hydra calls on_multirun_end once, on the launching machine, after every job returned,
    whatever the launcher. The report is built from the files the jobs left in the multirun
    dir, exactly as `python -m mer_lightning.compare DIR` does later. When a job failed,
    the command then exits with status 1 (as Hydra does for failed jobs), after the report.
    Jobs without any result do not fail it: by the time Hydra calls this, every job of this
    call has returned, so they belong to another call that shares the sweep dir (the
    documented way to add models or seeds to a sweep) or to an earlier, interrupted one.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mer_lightning.compare import build_report  # matplotlib only when a sweep ends

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            report = build_report(sweep_dir)
        except Exception:
            log.exception("could not write the comparison report of %s", sweep_dir)
            raise SystemExit(1) from None
        if report.unfinished:
            log.warning(
                "%d of %d jobs in %s have no result yet (%s): training in another call, or "
                "interrupted; the sweep again with resume=true continues them",
                len(report.unfinished),
                len(report.jobs),
                sweep_dir,
                ", ".join(job.dir.name for job in report.unfinished),
            )
        if report.failed:
            log.error(
                "%d of %d jobs failed; see %s",
                len(report.failed),
                len(report.jobs),
                sweep_dir / "comparison.md",
            )
            raise SystemExit(1)
