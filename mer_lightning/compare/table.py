"""The comparison as rows of text, rendered as Markdown, CSV and a rich table.

Rows follow the paper's Table 1 (Train, Test, Generation order; one column per model), with
the best checkpoint's validation accuracy beside them, then what the paper did not
report: fit seconds, training throughput, parameters, precision, macro and
per-class F1 on the test split. Under a row the paper reports for a model comes a "paper"
row with its figure, and under Test one row per re-test of `python -m mer_lightning.evaluate`
(e.g. "Test, data.dedup=true").
"""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from mer_lightning.compare.jobs import Job
from mer_lightning.compare.paper import paper_figure, paper_target
from mer_lightning.compare.summary import (
    VAL_TAIL_EPOCHS,
    VAL_TAIL_KEY,
    Group,
    evaluation_names,
    metric,
    varying_keys,
)

VAL_TAIL_ROW = f"Val, last {VAL_TAIL_EPOCHS} epochs"

NOTE = (
    "Train, Val and Test are accuracies in %. Val is the best checkpoint's (with the default "
    f'monitor.metric, the score that chose it); "{VAL_TAIL_ROW}" is the mean val over each '
    f"run's last {VAL_TAIL_EPOCHS} validated epochs, a steadier score for comparing recipes. "
    "With several runs per model (seeds), numbers are mean ± sample std. Generation order "
    "ranks the models by generation seconds (1 = made first): their fit seconds, plus, for a "
    "model distilled from teachers (callbacks.distill.teachers), the teachers' own."
)
GENERATION_ROW = "Generation seconds"
GENERATION_NOTE = (
    f"\"{GENERATION_ROW}\" adds to each distilled run's fit seconds those of its teachers' runs "
    "(and of theirs), read from the metrics.json beside each teacher's checkpoints/ folder; — "
    "where a teacher's run dir cannot be read from here (relative teacher paths resolve "
    "against the current dir: run the comparison from the dir the sweep was launched in)."
)
PAPER_SUFFIX = ", paper"
PAPER_NOTE = (
    'Rows ending in "paper" are the figures of Sánchez García et al. (2023) on the same test '
    "split: Table 1, and Figure 6 for CNN1's F1."
)
EVALUATION_NOTE = (
    '"Test, <overrides>" rows are the best checkpoints tested again with those overrides by '
    "`python -m mer_lightning.evaluate DIR <overrides>`."
)
JOB_KEYS = (  # RunResults fields that are CSV columns, in column order
    "model",
    "seed",
    "epochs",
    "parameters",
    "precision",
    "fit_seconds",
    "train_images_per_second",
    "train_images_seen",
    "train_acc",
    "val_acc",
    "test_acc",
    "test_f1_macro",
    "best_checkpoint",
)
DERIVED_KEYS = (VAL_TAIL_KEY,)  # CSV columns computed from metrics.json (`metric`)
# CSV columns per re-test by mer_lightning.evaluate, e.g. test_acc[data.dedup=true]
RETEST_KEYS = ("test_acc", "test_f1_macro")
RETEST_PREFIX = "Test, "  # row name of a re-test: "Test, data.dedup=true"

MEASURED, PAPER, RETEST, GENERATION, TIME = "measured", "paper", "retest", "generation", "time"


@dataclass(frozen=True)
class Row:
    """One row of the table: its name, one cell per group, what kind of figure it holds
    (measured here, the paper's, a re-test, generation seconds) and whether a new section of
    the terminal table starts at it."""

    name: str
    cells: list[str]
    kind: str = MEASURED
    section: bool = False


def _cell(
    group: Group,
    name: str,
    spec: str,
    scale: float = 1.0,
    spread: bool = True,
    evaluation: str | None = None,
) -> str:
    stat = group.stat(name, evaluation)
    if stat is None:
        return "—"
    return stat.format(spec, scale) if spread else format(stat.mean * scale, spec)


def _measured_and_paper(
    groups: Sequence[Group],
    row: str,
    name: str,
    spec: str,
    scale: float = 1.0,
    section: bool = False,
) -> list[Row]:
    """The row of metric `name`, then its "paper" row if the paper reports it for a model."""
    rows = [Row(row, [_cell(g, name, spec, scale) for g in groups], section=section)]
    paper = [paper_figure(g.model, name) for g in groups]
    if any(value is not None for value in paper):
        cells = ["—" if value is None else format(value * scale, spec) for value in paper]
        rows.append(Row(row + PAPER_SUFFIX, cells, PAPER))
    return rows


def table_rows(groups: Sequence[Group], classes: Sequence[str]) -> list[Row]:
    """Every row of the comparison table, in order."""
    evaluations = evaluation_names([job for group in groups for job in group.jobs])
    rows = [
        *_measured_and_paper(groups, "Train", "train_acc", ".2f", 100),
        Row("Val", [_cell(g, "val_acc", ".2f", 100) for g in groups]),
        Row(VAL_TAIL_ROW, [_cell(g, VAL_TAIL_KEY, ".2f", 100) for g in groups]),
        *_measured_and_paper(groups, "Test", "test_acc", ".2f", 100),
        *[
            Row(RETEST_PREFIX + name, [_retest_cell(g, name) for g in groups], RETEST)
            for name in evaluations
        ],
        Row("Generation order", [str(g.generation_order or "—") for g in groups]),
        Row("Fit seconds", [_cell(g, "fit_seconds", ".1f") for g in groups], section=True),
        *_generation_seconds(groups),
        *_time_to_paper(groups),
        Row("Train images / s", [_cell(g, "train_images_per_second", ".0f") for g in groups]),
        Row("Parameters", [_cell(g, "parameters", ",.0f", spread=False) for g in groups]),
        Row("Precision", [_precisions(g) for g in groups]),
        *_measured_and_paper(groups, "Macro F1", "test_f1_macro", ".3f"),
    ]
    for index, name in enumerate(classes):
        rows += _measured_and_paper(
            groups, f"F1 {name}", f"test/f1/{name}", ".3f", section=index == 0
        )
    rows.append(Row("Runs", [_runs(g) for g in groups], section=True))
    return rows


def table_note(rows: Sequence[Row], not_swept: Sequence[str] = ()) -> str:
    """How to read the table, including its paper and re-test rows when it has them, and
    the overrides its columns ignore (`--not-swept`), so a reader sees the grouping chosen."""
    kinds = {row.kind for row in rows}
    parts = [NOTE]
    if PAPER in kinds:
        parts.append(PAPER_NOTE)
    if RETEST in kinds:
        parts.append(EVALUATION_NOTE)
    if GENERATION in kinds:
        parts.append(GENERATION_NOTE)
    if TIME in kinds:
        parts.append(TIME_TO_NOTE)
    if not_swept:
        keys = ", ".join(f"`{key}`" for key in not_swept)
        parts.append(
            f"Columns group jobs as if none had overridden {keys} (`--not-swept`): jobs that "
            "differ only there share a column; comparison.csv keeps every job's overrides."
        )
    return " ".join(parts)


def _generation_seconds(groups: Sequence[Group]) -> list[Row]:
    """The generation seconds row, when some model was distilled (otherwise it would repeat
    Fit seconds)."""
    if not any(group.distilled for group in groups):
        return []
    stats = [group.generation_seconds for group in groups]
    return [Row(GENERATION_ROW, ["—" if s is None else s.format(".1f") for s in stats], GENERATION)]


TIME_TO = (("val", "val/acc"), ("test", "epoch_test/acc"))  # (row label, history key)
TIME_TO_NOTE = (
    '"Epochs / seconds to paper" count, per run, the epochs and fit seconds until its val '
    "accuracy, or its test accuracy scored after each epoch (callbacks.epoch_test), first "
    "reached the paper's test accuracy for that net (mean over seeds); the test scores "
    "choose nothing."
)


def _time_to_paper(groups: Sequence[Group]) -> list[Row]:
    """Epochs and seconds until val / per-epoch test accuracy reached the paper's test
    accuracy, for splits some run logged per epoch."""
    rows = []
    for split, key in TIME_TO:
        found = [
            g.time_to(key, target) if (target := paper_target(g.model)) else None for g in groups
        ]
        if all(f is None for f in found):
            continue
        epochs = [f if isinstance(f, str) else f[0].format(".1f") if f else "—" for f in found]
        seconds = [
            "—" if not f or isinstance(f, str) or f[1] is None else f[1].format(".0f")
            for f in found
        ]
        rows.append(Row(f"Epochs to paper ({split})", epochs, TIME))
        rows.append(Row(f"Seconds to paper ({split})", seconds, TIME))
    return rows


def _retest_cell(group: Group, evaluation: str) -> str:
    """Test accuracy of the group's re-tests; says how many are missing, if any are."""
    tested = sum(evaluation in job.evaluations for job in group.completed)
    if tested < len(group.completed):
        return f"— ({tested} of {len(group.completed)} re-tested)"
    return _cell(group, "test_acc", ".2f", 100, evaluation=evaluation)


def _precisions(group: Group) -> str:
    """The precision(s) the group's completed jobs trained in; fit seconds compare fairly only
    between the same precision (on the same machine). "—" for runs that did not record it."""
    found = [job.metrics.precision for job in group.completed]
    return ", ".join(dict.fromkeys(value or "—" for value in found)) or "—"


def _runs(group: Group) -> str:
    done, total = len(group.completed), len(group.jobs)
    return str(done) if done == total else f"{done} of {total}"


def failed_jobs(jobs: Sequence[Job]) -> list[tuple[str, str, str]]:
    """(job number, swept overrides, why: the error, or how far it got) of each job without
    results."""
    keys = varying_keys(jobs)
    return [
        (
            "—" if job.num is None else str(job.num),
            " ".join(f"{k}={job.overrides[k]}" for k in keys if k in job.overrides) or "—",
            job.error or job.status,
        )
        for job in jobs
        if not job.completed
    ]


def markdown(title: str, groups, classes, jobs, not_swept: Sequence[str] = ()) -> str:
    """comparison.md: the table, a note on how to read it, and the jobs without results."""
    done = sum(job.completed for job in jobs)
    lines = [f"# Model comparison: {title}", "", f"{len(jobs)} jobs, {done} completed.", ""]
    lines.append("| | " + " | ".join(_md(g.label) for g in groups) + " |")
    lines.append("|---|" + "---:|" * len(groups))
    rows = table_rows(groups, classes)
    lines += [f"| {row.name} | " + " | ".join(row.cells) + " |" for row in rows]
    lines += ["", table_note(rows, not_swept), ""]
    failed = failed_jobs(jobs)
    if failed:
        lines += ["## Jobs without results", "", "| job | overrides | why |", "|---|---|---|"]
        lines += [f"| {num} | {_md(over)} | {_md(error)} |" for num, over, error in failed]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def write_csv(path: Path, groups: Sequence[Group]) -> None:
    """comparison.csv: one row per job with every override and every metric, and the
    accuracy and macro F1 of each re-test by `mer_lightning.evaluate`.

    `dir` is relative to the multirun dir (where comparison.csv is written).
    """
    jobs = [(group, job) for group in groups for job in group.jobs]
    jobs.sort(key=lambda pair: (pair[1].num is None, pair[1].num or 0))
    override_keys = list(dict.fromkeys(k for _, job in jobs for k in job.overrides))
    results = [job.metrics for _, job in jobs if job.metrics is not None]
    logged = sorted({k for r in results for k in r.metrics})
    classes = list(dict.fromkeys(c for r in results for c in r.per_class or {}))
    retests = [
        (name, key) for name in evaluation_names([j for _, j in jobs]) for key in RETEST_KEYS
    ]
    header = ["job", "status", "error", "group", "generation_order", "generation_seconds", "dir"]
    header += [f"override.{k}" for k in override_keys] + list(JOB_KEYS) + list(DERIVED_KEYS)
    header += logged
    header += [f"test/support/{name}" for name in classes]
    header += [f"{key}[{name}]" for name, key in retests]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for group, job in jobs:
            per_class = (job.metrics.per_class if job.metrics else None) or {}
            writer.writerow(
                [job.num, job.status, job.error, group.label, group.generation_order]
                + [job.generation_seconds]
                + [job.dir.relative_to(path.parent) if job.dir else None]
                + [job.overrides.get(k) for k in override_keys]
                + [getattr(job.metrics, k, None) for k in JOB_KEYS]
                + [metric(job.metrics, k) for k in DERIVED_KEYS]
                + [metric(job.metrics, k) for k in logged]
                + [per_class.get(name, {}).get("support") for name in classes]
                + [getattr(job.evaluations.get(name), key, None) for name, key in retests]
            )


def print_tables(
    console: Console, title: str, groups, classes, jobs, not_swept: Sequence[str] = ()
) -> None:
    """The same table (and the jobs without results) in the terminal."""
    table = Table(title=f"Model comparison: {title}", box=box.SIMPLE_HEAVY)
    table.add_column("")
    for group in groups:
        table.add_column(group.label, justify="right")
    rows = table_rows(groups, classes)
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        table.add_row(row.name, *row.cells, end_section=following is not None and following.section)
    console.print(table)
    console.print(table_note(rows, not_swept), style="dim")
    failed = failed_jobs(jobs)
    if failed:
        errors = Table(title="Jobs without results", box=box.SIMPLE, title_style="bold red")
        for column in ("job", "overrides", "why"):
            errors.add_column(column, overflow="fold")
        for row in failed:
            errors.add_row(*row)
        console.print(errors)
