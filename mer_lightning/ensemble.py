"""`python -m mer_lightning.ensemble DIR [overrides]`: the finished runs of a sweep, tested
as one model that averages their class probabilities (soft voting), without training.

Each run under DIR (a multirun dir, a folder of links to runs, or published results) takes
part through its predictions.csv: the class probabilities its best checkpoint gave every val
and test image. So no checkpoint is needed, and an ensemble of published runs is rebuilt
from docs/results alone. The ensemble is scored on the validation split the runs were
trained with, so that whether it beats its best member is decided on val, and on the test
split with the given overrides (e.g. `data.dedup=true`, whose predictions
`python -m mer_lightning.evaluate DIR data.dedup=true` writes); overrides that leave data.*
alone (`module.tta_hflip=true`) score val with them too. Results go to
`DIR/ensemble/<overrides>/`: metrics.json, classification_report.txt,
confusion_matrix.{csv,png}, predictions.csv and ensemble.md (each member beside the
ensemble). The runs' files are never touched; an ensemble built before from the same runs is
shown again, not redone. Exit status 2 for bad input.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torchmetrics.classification import MulticlassConfusionMatrix

from mer_lightning.core.errors import UserError
from mer_lightning.core.metrics import classification_metrics
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import SplitPredictions, read_predictions, write_csv
from mer_lightning.evaluate import finished_runs, keeps_val_split
from mer_lightning.runs.config import output_name
from mer_lightning.runs.console import command_name, exit_on_user_error, help_epilog
from mer_lightning.runs.reports import write_test_reports
from mer_lightning.runs.results import FILE as RESULTS_FILE
from mer_lightning.runs.results import RunResults, read_results, write_results

log = logging.getLogger(__name__)


@dataclass
class Member:
    """A finished run: its metrics.json, and its predictions of val (as trained) and test
    (with the ensemble's overrides), with the files they came from."""

    run_dir: Path
    metrics: RunResults
    class_names: list[str]
    val: SplitPredictions
    test: SplitPredictions
    sources: list[Path]


def as_trained_predictions(run_dir: Path) -> Path:
    """The predictions.csv of the run as trained: the run's own, or for runs trained before
    runs wrote one, the one `python -m mer_lightning.evaluate RUN` writes."""
    own = run_dir / PREDICTIONS_FILE
    evaluated = run_dir / "evaluate" / output_name([]) / PREDICTIONS_FILE
    if own.is_file() or not evaluated.is_file():
        return own
    return evaluated


def _split(path: Path, split: str, fix: str) -> tuple[list[str], SplitPredictions]:
    names, splits = read_predictions(path)
    if split not in splits:
        raise UserError(f"{path} has no {split} rows; {fix}")
    return names, splits[split]


def load_member(run_dir: Path, sweep_dir: Path, overrides: list[str]) -> Member:
    """A finished run's predictions of test with `overrides`, and of val with them too when
    they keep the val split (module.tta_hflip=true), else as trained (data.dedup=true)."""
    metrics = read_results(run_dir / RESULTS_FILE)
    if metrics.data.get("val_images") == 0:
        raise UserError(
            f"{run_dir} is a refit without validation (data.val_fraction=0), and an ensemble "
            "is judged against its members on val: ensemble runs trained with a val split"
        )
    trained = as_trained_predictions(run_dir)
    if not trained.is_file():
        raise UserError(
            f"{run_dir} has no {PREDICTIONS_FILE} (trained before runs wrote one): "
            f"`python -m mer_lightning.evaluate {run_dir}` writes one from its best checkpoint "
            f"into {run_dir}/evaluate/{output_name([])}/"
        )
    evaluate_all = f"`python -m mer_lightning.evaluate {sweep_dir} {' '.join(overrides)}`"
    names, val = _split(trained, "val", f"`python -m mer_lightning.evaluate {run_dir}` writes them")
    sources = [trained]
    if overrides:
        tested = run_dir / "evaluate" / output_name(overrides) / PREDICTIONS_FILE
        if not tested.is_file():
            earlier = tested.parent / "metrics.json"
            how = (
                f"remove {tested.parent} (evaluated before predictions were written), then run "
                if earlier.is_file()
                else "run "
            )
            raise UserError(f"{tested} is missing: {how}{evaluate_all}")
        test_names, tested_splits = read_predictions(tested)
        if "test" not in tested_splits:
            raise UserError(f"{tested} has no test rows; run {evaluate_all} again")
        if test_names != names:
            raise UserError(f"{tested} names classes {test_names}, {trained} names {names}")
        test = tested_splits["test"]
        if keeps_val_split(overrides):
            if "val" not in tested_splits:
                raise UserError(
                    f"{tested} has no val rows (evaluated before val was scored under "
                    f"{' '.join(overrides)}): remove {tested.parent}, then run {evaluate_all}"
                )
            val = tested_splits["val"]
        sources.append(tested)
    else:
        _, test = _split(
            trained, "test", f"`python -m mer_lightning.evaluate {run_dir}` writes them"
        )
    return Member(run_dir, metrics, names, val, test, sources)


def check_compatible(members: Sequence[Member]) -> None:
    """Members must predict the same classes for the same images: the same val split (or
    the ensemble's val score would be on images a member trained on) and the same test."""
    first = members[0]
    for member in members[1:]:
        if member.class_names != first.class_names:
            raise UserError(
                f"{member.run_dir} predicts {member.class_names} but {first.run_dir} "
                f"predicts {first.class_names}: ensemble runs of one dataset"
            )
        for split in ("val", "test"):
            ours, theirs = getattr(member, split), getattr(first, split)
            if ours.files != theirs.files or not torch.equal(ours.labels, theirs.labels):
                others = len(set(ours.files) ^ set(theirs.files))
                raise UserError(
                    f"{member.run_dir} predicted {split} on other images than {first.run_dir} "
                    f"({len(ours.files)} against {len(theirs.files)}, {others} not in both): "
                    "ensemble runs trained on the same split (data.root, data.val_fraction, "
                    "data.split_seed, data.dedup) and tested with the same overrides"
                )


def soft_vote(splits: Sequence[SplitPredictions]) -> SplitPredictions:
    """The mean of the members' class probabilities, image by image."""
    first = splits[0]
    mean = torch.stack([split.probabilities for split in splits]).mean(dim=0)
    return SplitPredictions(first.files, first.labels, mean)


def score(predicted: SplitPredictions, class_names: Sequence[str], stage: str) -> dict[str, float]:
    """The metrics a run logs for `stage` (`val/acc`, `test/f1/fear`, ...), of these predictions."""
    metrics = classification_metrics(class_names, stage)
    metrics.update(predicted.probabilities, predicted.labels)
    return {key: float(value) for key, value in metrics.compute().items()}


def ensemble(sweep_dir: Path, overrides: list[str]) -> RunResults:
    """Score the soft-voting ensemble of the finished runs under `sweep_dir`; the summary
    also written to `sweep_dir/ensemble/<overrides>/metrics.json`."""
    runs = finished_runs(sweep_dir)
    if len(runs) < 2:
        raise UserError(
            f"{sweep_dir} has one finished run; an ensemble needs two or more: give the "
            "multirun dir of a sweep (e.g. over seed=1,2,3 or model=cnn1,cnn2,resnet18)"
        )
    names = [str(run.relative_to(sweep_dir)) for run in runs]
    out = sweep_dir / "ensemble" / output_name(overrides)
    if (out / RESULTS_FILE).is_file():
        before = read_results(out / RESULTS_FILE)
        built_from = [m["run"] for m in before.members]
        if built_from == names:
            log.info("%s: built before from the same runs; showing its metrics.json", out)
            return before
        raise UserError(
            f"{out} holds the ensemble of {len(built_from)} runs ({', '.join(built_from)}), "
            f"but {sweep_dir} now has {len(names)} finished, a different set "
            f"({', '.join(names)}): move {out} away (e.g. to {out.name}-old) to build it again"
        )
    if out.is_dir() and any(out.iterdir()):
        raise UserError(
            f"{out} exists without metrics.json (an ensemble that stopped midway): remove it "
            "to build it again"
        )
    members = [load_member(run, sweep_dir, overrides) for run in runs]
    check_compatible(members)
    classes = members[0].class_names
    val = soft_vote([member.val for member in members])
    test = soft_vote([member.test for member in members])
    results = {**score(val, classes, "val"), **score(test, classes, "test")}
    summary = RunResults(
        kind="ensemble",
        model="ensemble",
        seed=None,
        members=[
            {
                "run": name,
                "model": member.metrics.model,
                "seed": member.metrics.seed,
                "val_acc": member.val.accuracy(),
                "test_acc": member.test.accuracy(),
                "predictions": [str(p.relative_to(sweep_dir)) for p in member.sources],
            }
            for name, member in zip(names, members, strict=True)
        ],
        overrides=overrides,
        val_acc=results["val/acc"],
        test_acc=results["test/acc"],
        test_f1_macro=results["test/f1_macro"],
        classes=classes,
        data={"val_images": len(val.files), "test_images": len(test.files)},
        metrics=dict(sorted(results.items())),
    )
    out.mkdir(parents=True, exist_ok=True)
    confusion = MulticlassConfusionMatrix(len(classes))(test.probabilities, test.labels)
    write_test_reports(out, summary, confusion)
    write_csv(out / PREDICTIONS_FILE, classes, {"val": val, "test": test})
    (out / "ensemble.md").write_text(members_markdown(summary))
    write_results(out / RESULTS_FILE, summary)
    return summary


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def member_rows(summary: RunResults) -> list[list[str]]:
    """(run, model, seed, val %, test %) per member, then the ensemble's row."""
    rows = [
        [m["run"], str(m["model"]), str(m["seed"]), _percent(m["val_acc"]), _percent(m["test_acc"])]
        for m in summary.members
    ]
    ensemble_row = ["ensemble", "soft vote", "—", _percent(summary.val_acc)]
    rows.append([*ensemble_row, _percent(summary.test_acc)])
    return rows


COLUMNS = ("run", "model", "seed", "val acc %", "test acc %")


def _test_caption(summary: RunResults) -> str:
    overrides = " ".join(summary.overrides)
    return f"test with {overrides}" if overrides else "test as trained"


def members_markdown(summary: RunResults) -> str:
    """ensemble.md: each member's accuracy beside the ensemble's, and how to read them."""
    lines = [
        f"# Soft-voting ensemble of {len(summary.members)} runs ({_test_caption(summary)})",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|---:|---:|",
        *["| " + " | ".join(row) + " |" for row in member_rows(summary)],
        "",
        f"Macro F1 of the ensemble: {summary.test_f1_macro:.3f}. Val is the split the "
        "members were trained with (their best checkpoints were chosen on it). Every accuracy "
        "here is computed from the members' predictions.csv files.",
        "",
    ]
    return "\n".join(lines)


def print_table(summary: RunResults) -> None:
    """The members and the ensemble in the terminal."""
    table = Table(
        title=f"Soft-voting ensemble of {len(summary.members)} runs, {_test_caption(summary)}"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("run", "model") else "right")
    rows = member_rows(summary)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_row(*rows[-1], style="bold")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Build and print the ensemble of DIR's finished runs; exit status 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog=command_name("mer_lightning.ensemble", "mer-ensemble"),
        description="Test the finished runs of a sweep as one soft-voting ensemble.",
        epilog=help_epilog(
            "mer-ensemble",
            "mer_lightning.ensemble",
            "outputs/multirun/2024-05-01/10-00-00-123456",
            "outputs/multirun/2024-05-01/10-00-00-123456 data.dedup=true",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="a multirun dir (or one run dir)")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides of the test, e.g. data.dedup=true"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with exit_on_user_error():
        summary = ensemble(args.dir, args.overrides)
        print_table(summary)
        print(f"written {args.dir / 'ensemble' / output_name(args.overrides)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
