"""Group the jobs of a sweep by model (and any other swept setting) and summarise them.

Seeds are what a group averages over: jobs that differ only in `seed` form one group, whose
numbers are mean ± std over its completed jobs. "Generation order" is the paper's ranking
of the models by training time: 1 = the model made fastest, counting for a distilled model
its teachers' training too (`Job.generation_seconds`).
"""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from mer_lightning.compare.jobs import Job
from mer_lightning.core.errors import UserError
from mer_lightning.runs.config import AS_TRAINED
from mer_lightning.runs.results import RunResults

SEED_KEY = "seed"
# Overrides that continue a run without changing it: a sweep resumed for some of its jobs
# (resume=true submits only the unfinished ones on SLURM) still has one column per model.
NOT_A_RUN_KEYS = ("resume",)


@dataclass
class Stat:
    """Mean and sample standard deviation of one number over a group's runs."""

    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """None with fewer than two runs: there is no spread to show."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def format(self, spec: str, scale: float = 1.0) -> str:
        """`82.53 ± 0.41`, or just the mean for a single run."""
        text = format(self.mean * scale, spec)
        return text if self.std is None else f"{text} ± {format(self.std * scale, spec)}"


VAL_TAIL_EPOCHS = 10
VAL_TAIL_KEY = f"val_acc_last_{VAL_TAIL_EPOCHS}"  # metric() name of val_tail_mean


def val_tail_mean(metrics: RunResults) -> float | None:
    """Mean val/acc over the run's last VAL_TAIL_EPOCHS validated epochs (metrics.json
    history; all of them if fewer); None without any. Recipes this close are told apart
    better by it than by the best epoch's val, which favours the noisiest curve."""
    values = [row["val/acc"] for row in metrics.history if "val/acc" in row]
    tail = values[-VAL_TAIL_EPOCHS:]
    return statistics.fmean(tail) if tail else None


def metric(metrics: RunResults | None, name: str) -> float | None:
    """A number of a run's results: a field (`test_acc`), a logged key (`test/f1/fear`) or
    VAL_TAIL_KEY (`val_tail_mean`); None where absent."""
    if metrics is None:
        return None
    if name == VAL_TAIL_KEY:
        return val_tail_mean(metrics)
    return metrics.number(name)


def time_to(metrics: RunResults, key: str, target: float) -> tuple[float, float | None] | None:
    """(epochs, fit seconds) until the logged `key` first reached `target` in the run's
    per-epoch history; None if it never did (or was never logged)."""
    for row in metrics.history:
        if row.get(key) is not None and row[key] >= target:
            return row["epoch"] + 1, row.get("fit_seconds")
    return None


@dataclass
class Group:
    """The jobs that share every override but the seed: one column of the table."""

    label: str
    jobs: list[Job]
    generation_order: int | None = None  # rank of mean generation seconds; None if unknown

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.completed]

    @property
    def model(self) -> str | None:
        """model.name of the group's jobs (they differ in the seed only)."""
        return self.jobs[0].model

    @property
    def generation_seconds(self) -> Stat | None:
        """Generation seconds (fit plus teachers') over the completed jobs; None unless every
        one of them is known, so that a partial mean never ranks a model."""
        values = [job.generation_seconds for job in self.completed]
        return Stat(values) if values and None not in values else None

    @property
    def distilled(self) -> bool:
        """Whether any completed job learnt from teachers (callbacks.distill.teachers)."""
        return any(job.teachers for job in self.completed)

    def time_to(self, key: str, target: float) -> tuple[Stat, Stat | None] | str | None:
        """Mean epochs and fit seconds until `key` reached `target`, over the completed jobs
        that logged it; a note when some never reached it; None when none logged it."""
        logged = [job for job in self.completed if any(key in r for r in job.metrics.history)]
        if not logged:
            return None
        reached = [time_to(job.metrics, key, target) for job in logged]
        if None in reached:
            hits = len(logged) - reached.count(None)
            return f"not reached ({hits} of {len(logged)})"
        seconds = [s for _, s in reached]
        return Stat([e for e, _ in reached]), None if None in seconds else Stat(seconds)

    def stat(self, name: str, evaluation: str | None = None) -> Stat | None:
        """`metric(name)` over the completed jobs, or over their `evaluation` (an
        `evaluate/<overrides>` folder name) when given; None when no job has it."""
        sources = [
            job.evaluations.get(evaluation) if evaluation else job.metrics for job in self.completed
        ]
        values = [metric(source, name) for source in sources]
        values = [value for value in values if value is not None]
        return Stat(values) if values else None


def varying_keys(jobs: Sequence[Job]) -> list[str]:
    """Override keys whose value is not the same in every job (in first-seen order)."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]


def group_jobs(jobs: Sequence[Job], not_swept: Sequence[str] = ()) -> list[Group]:
    """Groups in order of first appearance, labelled by model and the other swept values.

    `not_swept` names override keys to group as if no job had given them: an override that
    restates what the other jobs ran with (a default made explicit) must not split a model's
    seeds into two columns.
    """
    if "model" in not_swept:
        raise UserError("--not-swept model: the model names the columns; give another key")
    given = {key for job in jobs for key in job.overrides}
    unknown = [key for key in not_swept if key not in given]
    if unknown:
        raise UserError(
            f"--not-swept {' '.join(unknown)}: no job of the sweep overrides "
            f"{'it' if len(unknown) == 1 else 'them'}; give one of the keys its jobs "
            f"override: {', '.join(sorted(given)) or 'none'}"
        )
    swept = [
        key for key in varying_keys(jobs) if key not in (SEED_KEY, *NOT_A_RUN_KEYS, *not_swept)
    ]
    groups: dict[tuple, Group] = {}
    for job in jobs:
        key = tuple((name, job.overrides.get(name)) for name in swept)
        if key not in groups:
            extra = [f"{name}={value}" for name, value in key if name != "model" and value]
            groups[key] = Group(" ".join([job.model or "?", *extra]), [])
        groups[key].jobs.append(job)
    result = list(groups.values())
    labels = [group.label for group in result]
    for group, key in zip(result, groups, strict=True):
        if labels.count(group.label) > 1:  # e.g. model=cnn1 and model=my_cnn1 (name: cnn1)
            group.label = " ".join(f"{name}={value}" for name, value in key if value)
    rank_by_generation_seconds(result)
    return result


def rank_by_generation_seconds(groups: Sequence[Group]) -> None:
    """Set generation_order: 1 for the smallest mean generation seconds, ties broken by label."""
    timed = [(group.generation_seconds, group) for group in groups]
    ranked = sorted(((s.mean, g.label, g) for s, g in timed if s is not None), key=lambda t: t[:2])
    for rank, (_, _, group) in enumerate(ranked, start=1):
        group.generation_order = rank


def evaluation_names(jobs: Sequence[Job]) -> list[str]:
    """The `evaluate/<overrides>` folders of the completed jobs, in first-seen order; not the
    re-tests without overrides, which repeat Test (they give older runs a predictions.csv)."""
    names = (name for job in jobs if job.completed for name in job.evaluations)
    return list(dict.fromkeys(name for name in names if name != AS_TRAINED))


def class_names(jobs: Sequence[Job]) -> list[str]:
    """The classes of the completed jobs, in their order."""
    return list(dict.fromkeys(name for job in jobs if job.metrics for name in job.metrics.classes))
