"""`python -m mer_lightning.trials STORAGE`: every trial of an Optuna search, best first.

A search run with `hparams_search=optuna hydra.sweeper.storage=sqlite:///FILE.db` keeps its
study in that file across all the calls (sweep dirs) that continued it. This lists the
study's trials: number, state, objective value, duration and the parameters tried, as a rich
table and, with --out, as Markdown for docs/results (the record that the recipe was chosen
on the validation split). Exit status 2 for bad input.
"""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mer_lightning.core.errors import UserError
from mer_lightning.runs import extras
from mer_lightning.runs.console import command_name, exit_on_user_error, help_epilog

if TYPE_CHECKING:  # optuna comes with the [search] extra; imported where it is used
    import optuna

SQLITE = "sqlite:///"


def load_study(storage: str, name: str | None) -> "optuna.Study":
    """The study `name` in `storage`, or its only study when `name` is None."""
    import optuna

    if storage.startswith(SQLITE) and not Path(storage[len(SQLITE) :]).is_file():
        raise UserError(
            f"{storage[len(SQLITE) :]} does not exist; give the hydra.sweeper.storage the "
            "search ran with, e.g. sqlite:///outputs/results/search.db"
        )
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if name is None and len(names) == 1:
        name = names[0]
    if name not in names:
        given = "no --study given" if name is None else f"--study {name} is not there"
        raise UserError(f"{storage} holds the studies {names}; {given}: pick one with --study")
    return optuna.load_study(study_name=name, storage=storage)


def trial_rows(study: "optuna.Study") -> tuple[list[str], list[list[str]]]:
    """Header and one row per trial: completed trials by value (best first), then the rest."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    params = list(dict.fromkeys(key for trial in trials for key in trial.params))
    best_first = study.direction == optuna.study.StudyDirection.MAXIMIZE
    completed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    completed.sort(key=lambda t: t.value, reverse=best_first)
    others = [t for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    header = ["trial", "state", "value", "minutes", *params]
    rows = []
    for trial in completed + others:
        minutes = trial.duration.total_seconds() / 60 if trial.duration else None
        rows.append(
            [
                str(trial.number),
                trial.state.name,
                "—" if trial.value is None else f"{trial.value:.4f}",
                "—" if minutes is None else f"{minutes:.0f}",
                *(_short(trial.params.get(key, "—")) for key in params),
            ]
        )
    return header, rows


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown(study: "optuna.Study", header: list[str], rows: list[list[str]]) -> str:
    """The trials as a Markdown page."""
    direction = study.direction.name.lower()
    lines = [
        f"# Optuna study `{study.study_name}`",
        "",
        f"{len(rows)} trials; objective ({direction}d): the value each trial's run returned "
        "(`monitor.metric` of its best checkpoint, on the validation split).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the trials of a stored study; with --out also write them as Markdown."""
    parser = argparse.ArgumentParser(
        prog=command_name("mer_lightning.trials", "mer-trials"),
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=help_epilog(
            "mer-trials",
            "mer_lightning.trials",
            "sqlite:///outputs/optuna.db --study cnn1",
            "sqlite:///outputs/optuna.db --study cnn1 --out docs/results/search_cnn1.md",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("storage", help="the search's hydra.sweeper.storage, sqlite:///FILE.db")
    parser.add_argument("--study", help="study name (the model); needed if the file holds several")
    parser.add_argument("--out", type=Path, help="also write the table to this new .md file")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        extras.require(extras.OPTUNA, "python -m mer_lightning.trials (mer-trials)")
        if args.out is not None and args.out.exists():
            raise UserError(f"{args.out} exists; give a new --out file (it is never overwritten)")
        study = load_study(args.storage, args.study)
        header, rows = trial_rows(study)
        table = Table(title=f"Optuna study {study.study_name}: trials, best first")
        for column in header:
            justify = "left" if column == "state" else "right"
            table.add_column(column, justify=justify, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(markdown(study, header, rows))
            print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
