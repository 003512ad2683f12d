"""The model comparison of a multirun: the paper's Table 1 and more.

`build_report(DIR)` reads the job dirs of a multirun dir and writes into it
- comparison.md: one column per model (per swept setting), rows Train, Val (the best
  epoch's and the mean of the last 10), Test, Generation order, fit seconds (and, with a
  distilled model, generation seconds: its teachers' fits added), images/s, parameters,
  macro and per-class F1, each with the paper's figure beneath where it reports one, and
  re-tests of `mer_lightning.evaluate` under Test; then the jobs without results (the
  error, or how far an unfinished one got);
- comparison.csv: one row per job with every override, every metric and its re-tests;
- comparison.png: test (and train) accuracy against generation seconds, one point per
  model, and the paper's test accuracy as a dashed line;
and prints the table. The Hydra callback calls it when a sweep ends;
`python -m mer_lightning.compare DIR` calls it on any multirun dir later.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from rich.console import Console

from mer_lightning.compare.jobs import FAILED, NO_RESULT, Job, read_jobs
from mer_lightning.compare.plot import comparison_figure
from mer_lightning.compare.summary import Group, class_names, group_jobs
from mer_lightning.compare.table import markdown, print_tables, write_csv
from mer_lightning.core.errors import UserError

REPORT_FILES = ("comparison.md", "comparison.csv", "comparison.png")


@dataclass
class Comparison:
    """What the report shows: every job, grouped into table columns."""

    sweep_dir: Path
    jobs: list[Job]
    groups: list[Group]
    classes: list[str]
    not_swept: tuple[str, ...] = ()  # override keys grouped as if not given (--not-swept)

    @property
    def failed(self) -> list[Job]:
        """Jobs that raised or did not compose (failure.json, failed_to_compose.json)."""
        return [job for job in self.jobs if job.status == FAILED]

    @property
    def unfinished(self) -> list[Job]:
        """Jobs with neither result nor failure: still training (maybe in another call that
        shares the sweep dir), or killed; the sweep again with resume=true continues them."""
        return [job for job in self.jobs if job.status == NO_RESULT]


def compare(sweep_dir: Path, not_swept: Sequence[str] = ()) -> Comparison:
    """Read and group the jobs of a multirun dir (`not_swept`: see `group_jobs`)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(
            f"{sweep_dir} is not a directory; give a multirun dir (outputs/multirun/...)"
        )
    jobs = read_jobs(sweep_dir)
    if not jobs:
        raise UserError(
            f"no Hydra jobs in {sweep_dir}: no */.hydra/overrides.yaml below it; give the dir "
            "of a multirun (hydra.sweep.dir, e.g. outputs/multirun/<date>/<time>)"
        )
    groups = group_jobs(jobs, not_swept)
    return Comparison(sweep_dir, jobs, groups, class_names(jobs), tuple(not_swept))


def build_report(
    sweep_dir: Path, console: Console | None = None, not_swept: Sequence[str] = ()
) -> Comparison:
    """Write comparison.{md,csv,png} into `sweep_dir`, print the table, return the data."""
    result = compare(sweep_dir, not_swept)
    title = result.sweep_dir.resolve().name
    md, csv, png = (result.sweep_dir / name for name in REPORT_FILES)
    md.write_text(markdown(title, result.groups, result.classes, result.jobs, result.not_swept))
    write_csv(csv, result.groups)
    figure = comparison_figure(result.groups, f"Model comparison: {title}")
    figure.savefig(png, dpi=120)
    plt.close(figure)
    console = console or Console()
    print_tables(console, title, result.groups, result.classes, result.jobs, result.not_swept)
    console.print(f"report: {md}, {csv.name}, {png.name}", highlight=False)
    return result
