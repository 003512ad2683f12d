"""Read the jobs of a multirun dir from the files they left behind.

Only files are read (never in-memory state), so that the report is the same whether it is
built by the Hydra callback at the end of the sweep or later by `python -m
mer_lightning.compare DIR`, on this machine or on a copy of a cluster's multirun dir.
Per job dir: `.hydra/overrides.yaml` and `.hydra/hydra.yaml` (Hydra), `metrics.json` (a
completed run) or `failure.json` (a run that raised), else the newest `last*.ckpt` (how
far an unfinished run got), and `evaluate/<overrides>/metrics.json` (the run tested again
by `python -m mer_lightning.evaluate`); per multirun dir: `failed_to_compose.json` (jobs
whose config did not compose). A job distilled from teachers (`callbacks.distill.teachers`) also
reads each teacher's run dir, for the seconds the teachers took to train.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mer_lightning.core.models.build import model_label
from mer_lightning.recipes.distill import teacher_run_dir, teachers_of
from mer_lightning.runs.failures import FAILURE_FILE, read_compose_failures
from mer_lightning.runs.results import FILE as RESULTS_FILE
from mer_lightning.runs.results import RunResults, read_results

COMPLETED, FAILED, NO_RESULT = "completed", "failed", "no result"
NO_RESULT_ERROR = "no metrics.json and no failure.json: still running, or killed (time, memory)"
UNFINISHED = "running, or stopped (the sweep again with resume=true continues it)"


@dataclass
class Job:
    """One sweep point: where it ran, what it overrode, how it ended, what it measured."""

    num: int | None  # hydra.job.num; None for a job whose config did not compose
    dir: Path | None  # the job dir; None when Hydra never made one
    overrides: dict[str, str]  # override key -> value, as given on the command line
    status: str  # COMPLETED, FAILED or NO_RESULT
    error: str | None = None  # first line of the error of a failed job
    model: str | None = None  # the job's model label (model.name, plus its variant)
    metrics: RunResults | None = None  # its metrics.json; None if not completed
    # evaluate/<overrides>/metrics.json by <overrides> (e.g. "data.dedup=true"); {} if none
    evaluations: dict[str, RunResults] = field(default_factory=dict)
    teachers: list[str] = field(default_factory=list)  # callbacks.distill.teachers it learnt from
    # fit seconds plus its teachers' generation seconds; None if not completed or unknown
    generation_seconds: float | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """`["model=cnn1", "seed=2"]` -> `{"model": "cnn1", "seed": "2"}`, parsed by Hydra."""
    parsed = OverridesParser.create().parse_overrides(list(lines))
    return {o.key_or_group: "" if o.is_delete() else o.get_value_element_as_str() for o in parsed}


def _load_yaml(path: Path):
    """A YAML file of Hydra's as an (unresolved) OmegaConf node; empty when absent."""
    return OmegaConf.load(path) if path.is_file() else OmegaConf.create()


def distill_teachers(config, run_dir: Path | None = None) -> list[str]:
    """The teacher checkpoints a run learnt from (its teachers.json, else its config's
    `callbacks.distill.teachers`); [] if none."""
    return teachers_of(config, run_dir)


def generation_seconds(run_dir: Path, metrics: RunResults, config) -> float | None:
    """Seconds it took to make the run's model: its fit, plus, for a run distilled from
    teachers, theirs counted the same way, since the student cannot train before they have.

    None when the run's fit seconds are not recorded or a teacher's metrics.json cannot be
    read from here (a relative teacher path resolves against the current dir, as it did
    when the run was launched).
    """
    fit = metrics.fit_seconds
    if fit is None or math.isnan(fit):
        return None
    total = float(fit)
    for teacher in distill_teachers(config, run_dir):
        teacher_dir = teacher_run_dir(Path(teacher).expanduser())
        if not (teacher_dir / "metrics.json").is_file():
            return None
        seconds = generation_seconds(
            teacher_dir,
            read_results(teacher_dir / RESULTS_FILE),
            _load_yaml(teacher_dir / ".hydra" / "config.yaml"),
        )
        if seconds is None:
            return None
        total += seconds
    return total


def checkpoint_progress(job_dir: Path, max_epochs: Any) -> str | None:
    """How far an unfinished run got, from its newest last*.ckpt; None without one.

    Reads the state the callbacks saved: epochs done (EpochHistory), the best monitored
    score (ModelCheckpoint) and the fit time so far (Timer).
    """
    found = list(job_dir.rglob("last*.ckpt"))
    if not found:
        return None
    path = max(found, key=lambda p: p.stat().st_mtime_ns)
    try:
        states = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["callbacks"]
    except Exception as error:  # a checkpoint cut short by the kill: say so, not crash the report
        return f"{path.name} unreadable ({type(error).__name__}); {UNFINISHED}"
    epochs = len(states.get("EpochHistory", {}).get("epochs", []))
    parts = [f"{epochs} of {max_epochs or '?'} epochs done"]
    for key, state in states.items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            parts.append(f"best {state['monitor']} {float(state['best_model_score']):.4f}")
            break
    if "Timer" in states:
        parts.append(f"{states['Timer']['time_elapsed']['train']:,.0f} s of fit")
    return f"no metrics.json yet; {path.name}: {', '.join(parts)}; {UNFINISHED}"


def read_job(job_dir: Path) -> Job:
    """The job whose Hydra output dir is `job_dir`."""
    hydra_dir = job_dir / ".hydra"
    overrides = parse_overrides(OmegaConf.load(hydra_dir / "overrides.yaml"))
    num = OmegaConf.select(_load_yaml(hydra_dir / "hydra.yaml"), "hydra.job.num", default=None)
    config = _load_yaml(hydra_dir / "config.yaml")
    job = Job(
        num=None if num is None else int(num),
        dir=job_dir,
        overrides=overrides,
        status=NO_RESULT,
        error=NO_RESULT_ERROR,
        model=model_label(config.model) if config.get("model") else overrides.get("model"),
        teachers=distill_teachers(config, job_dir),
    )
    # metrics.json wins: a job that failed once and then finished on a resumed re-run
    # still holds its old failure.json.
    if (job_dir / "metrics.json").is_file():
        job.status, job.error = COMPLETED, None
        job.metrics = read_results(job_dir / RESULTS_FILE)
        job.model = job.metrics.model or job.model
        job.generation_seconds = generation_seconds(job_dir, job.metrics, config)
        job.evaluations = {
            path.parent.name: read_results(path)
            for path in sorted(job_dir.glob(f"evaluate/*/{RESULTS_FILE}"))
        }
    elif (job_dir / FAILURE_FILE).is_file():
        job.status = FAILED
        job.error = json.loads((job_dir / FAILURE_FILE).read_text())["error"]
    else:
        max_epochs = OmegaConf.select(
            config, "trainer.max_epochs", default=None, throw_on_resolution_failure=False
        )
        job.error = checkpoint_progress(job_dir, max_epochs) or NO_RESULT_ERROR
    return job


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job of a multirun dir, in job order; uncomposable jobs come last."""
    # rglob does not enter linked dirs; the glob finds a finished run linked in as a job dir
    found = [*sweep_dir.rglob(".hydra/overrides.yaml"), *sweep_dir.glob("*/.hydra/overrides.yaml")]
    job_dirs = sorted({path.parent.parent for path in found})
    jobs = [read_job(job_dir) for job_dir in job_dirs]
    jobs.sort(key=lambda job: (job.num is None, job.num or 0, str(job.dir)))
    for record in read_compose_failures(sweep_dir):
        overrides = parse_overrides(record["overrides"])
        jobs.append(
            Job(None, None, overrides, FAILED, record["error"], model=overrides.get("model"))
        )
    return jobs
