"""`python -m mer_lightning.ensemble DIR [overrides]`: the finished runs of a sweep, tested
as one model that averages their class probabilities (soft voting), without training.

Every run under DIR (a multirun dir, or one run dir) predicts with its best checkpoint and
its own preprocessing. The ensemble is scored on the validation split the runs were trained
with, so that whether it beats its best member is decided on val, and on the test split
with the given overrides (e.g. `data.dedup=true`), with the metrics of a run's own test.
Results go to `DIR/ensemble/<overrides>/`: metrics.json, classification_report.txt,
confusion_matrix.{csv,png} and ensemble.md (each member beside the ensemble). The runs'
files are never touched; an ensemble built before from the same runs is shown again, not
redone. Exit status 2 for bad input.
"""

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from rich.console import Console
from rich.table import Table
from torch import nn

from mer_lightning import reports
from mer_lightning.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.config import recompose_run_config
from mer_lightning.console import exit_on_user_error
from mer_lightning.data.normalize import channel_stats, normalize_images
from mer_lightning.errors import UserError
from mer_lightning.evaluate import best_checkpoint, finished_runs, output_name
from mer_lightning.module import EmotionClassifier
from mer_lightning.train import build_datamodule, build_trainer, write_test_reports

log = logging.getLogger(__name__)

# data.* keys that decide which images are val and test; members must agree on them.
SPLIT_KEYS = ("root", "image_size", "val_fraction", "split_seed", "dedup")


@dataclass
class Member:
    """A finished run: its dir, its metrics.json and its best checkpoint, loaded."""

    run_dir: Path
    metrics: dict[str, Any]
    model: LoadedModel


class SoftVote(nn.Module):
    """Log of the mean class probabilities of several nets; each net sees the input
    normalised as it was trained (its own mean and std). Log-probabilities act as logits,
    so the module scores and trains nothing differently from a single net."""

    def __init__(self, members: Sequence[LoadedModel]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(member.net for member in members)
        self.register_buffer("means", torch.stack([channel_stats(m.mean) for m in members]))
        self.register_buffer("stds", torch.stack([channel_stats(m.std) for m in members]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, S, S) images -> (N, classes) log mean probabilities."""
        probabilities = torch.stack(
            [
                net(normalize_images(images, mean, std)).softmax(dim=1)
                for net, mean, std in zip(self.nets, self.means, self.stds, strict=True)
            ]
        ).mean(dim=0)
        return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


class EnsembleClassifier(EmotionClassifier):
    """EmotionClassifier around a SoftVote, for validate and test only (it has no
    optimizer): the members normalise their input themselves."""

    def __init__(self, members: Sequence[LoadedModel]) -> None:
        first = members[0]
        super().__init__(
            net=SoftVote(members),
            class_names=first.class_names,
            optimizer=None,
            image_size=first.image_size,
        )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return images


def load_member(run_dir: Path) -> Member:
    """A finished run, with its best checkpoint loaded."""
    metrics, checkpoint = best_checkpoint(run_dir)
    return Member(run_dir, metrics, load_checkpoint(checkpoint))


def check_compatible(members: Sequence[Member], configs: Sequence[DictConfig]) -> None:
    """Members must predict the same classes from the same image size, and must have been
    trained on the same train/val split, or the ensemble's val score would be on images a
    member trained on."""
    first, first_cfg = members[0], configs[0]
    for member, cfg in zip(members[1:], configs[1:], strict=True):
        if member.model.class_names != first.model.class_names:
            raise UserError(
                f"{member.run_dir} predicts {member.model.class_names} but {first.run_dir} "
                f"predicts {first.model.class_names}: ensemble runs of one dataset"
            )
        for key in SPLIT_KEYS:
            if cfg.data[key] != first_cfg.data[key]:
                raise UserError(
                    f"{member.run_dir} was trained with data.{key}={cfg.data[key]} but "
                    f"{first.run_dir} with data.{key}={first_cfg.data[key]}: ensemble runs "
                    "trained on the same split (one sweep dir per dataset and split)"
                )


def member_test_acc(member: Member, overrides: list[str]) -> float | None:
    """The member's test accuracy with `overrides`: as trained when there are none, else
    from `python -m mer_lightning.evaluate` with the same overrides, if it was run."""
    if not overrides:
        return member.metrics.get("test_acc")
    evaluated = member.run_dir / "evaluate" / output_name(overrides) / "metrics.json"
    return json.loads(evaluated.read_text())["test_acc"] if evaluated.is_file() else None


def ensemble(sweep_dir: Path, overrides: list[str]) -> dict[str, Any]:
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
    if (out / "metrics.json").is_file():
        before = json.loads((out / "metrics.json").read_text())
        built_from = [m["run"] for m in before["members"]]
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
    members = [load_member(run) for run in runs]
    trained_configs = [recompose_run_config(run, [], out) for run in runs]
    check_compatible(members, trained_configs)
    test_cfg = recompose_run_config(runs[0], overrides, out)
    with open_dict(test_cfg):
        test_cfg.logger = None  # nothing trains: no TensorBoard run
    trainer = build_trainer(test_cfg)
    module = EnsembleClassifier([member.model for member in members])
    val_data = build_datamodule(trained_configs[0])
    test_data = build_datamodule(test_cfg) if overrides else val_data
    val = trainer.validate(module, datamodule=val_data)[0]
    test = trainer.test(module, datamodule=test_data)[0]
    summary = {
        "model": "ensemble",
        "members": [
            {
                "run": name,
                "model": member.metrics.get("model"),
                "seed": member.metrics.get("seed"),
                "val_acc": member.metrics.get("val_acc"),
                "test_acc": member_test_acc(member, overrides),
                "checkpoint": member.metrics["best_checkpoint"],
            }
            for name, member in zip(names, members, strict=True)
        ],
        "overrides": overrides,
        "val_acc": val["val/acc"],
        "test_acc": test["test/acc"],
        "test_f1_macro": test["test/f1_macro"],
        "classes": test_data.class_names,
        "data": test_data.data_summary(),
        "metrics": {key: float(value) for key, value in sorted({**val, **test}.items())},
        "per_class": None,
    }
    write_test_reports(out, summary, module.confusion_matrix, trainer)
    (out / "ensemble.md").write_text(members_markdown(summary))
    reports.write_json(out / "metrics.json", summary)
    return summary


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def member_rows(summary: dict[str, Any]) -> list[list[str]]:
    """(run, model, seed, val %, test %) per member, then the ensemble's row."""
    rows = [
        [m["run"], str(m["model"]), str(m["seed"]), _percent(m["val_acc"]), _percent(m["test_acc"])]
        for m in summary["members"]
    ]
    ensemble_row = ["ensemble", "soft vote", "—", _percent(summary["val_acc"])]
    rows.append([*ensemble_row, _percent(summary["test_acc"])])
    return rows


COLUMNS = ("run", "model", "seed", "val acc %", "test acc %")


def _test_caption(summary: dict[str, Any]) -> str:
    overrides = " ".join(summary["overrides"])
    return f"test with {overrides}" if overrides else "test as trained"


def members_markdown(summary: dict[str, Any]) -> str:
    """ensemble.md: each member's accuracy beside the ensemble's, and how to read them."""
    lines = [
        f"# Soft-voting ensemble of {len(summary['members'])} runs ({_test_caption(summary)})",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|---:|---:|",
        *["| " + " | ".join(row) + " |" for row in member_rows(summary)],
        "",
        f"Macro F1 of the ensemble: {summary['test_f1_macro']:.3f}. Val is the split the "
        "members were trained with (their best checkpoints were chosen on it). A member's test "
        "accuracy with overrides comes from `python -m mer_lightning.evaluate` with the same "
        "overrides; — where that was not run.",
        "",
    ]
    return "\n".join(lines)


def print_table(summary: dict[str, Any]) -> None:
    """The members and the ensemble in the terminal."""
    table = Table(
        title=f"Soft-voting ensemble of {len(summary['members'])} runs, {_test_caption(summary)}"
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
        prog="python -m mer_lightning.ensemble",
        description="Test the finished runs of a sweep as one soft-voting ensemble.",
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
