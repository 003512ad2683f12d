"""`python -m mer_lightning.bench.accuracy`: does bf16 autocast cost test accuracy?

Trains the same config twice with the same seed, once with `trainer.precision=32-true` and
once with `trainer.precision=bf16-mixed` (Lightning's autocast), each through the
project's own `train.run` (fit, then test the best checkpoint), and writes both test
accuracies and their difference to `<out>/precision.{md,json}`. Extra arguments are Hydra
overrides for both runs, e.g. `model=cnn1 trainer.max_epochs=3`.

On a CPU without native bf16 the bf16 run is many times slower than fp32 (see
training.md), so a narrower net may be needed to finish in reasonable time there.
"""

import argparse
import json
import shlex
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mer_lightning.runs.config import compose_run_config
from mer_lightning.train import run

PRECISIONS = ("32-true", "bf16-mixed")
MAX_GAP_POINTS = 1.0  # the bound: fp32 and bf16 test accuracy within 1 point


def train_once(
    overrides: list[str], precision: str, run_dir: Path, seed: int | None = None
) -> dict[str, Any]:
    """One fit + test with `precision` (and `seed`); the summary figures that matter here."""
    extra = [f"trainer.precision={precision}", "print_config=false"]
    if seed is not None:
        extra.append(f"seed={seed}")
    cfg = compose_run_config([*overrides, *extra], run_dir)
    start = time.perf_counter()
    summary = run(cfg)
    return {
        "precision": precision,
        "seed": summary.seed,
        "test_acc": summary.test_acc,
        "val_acc": summary.val_acc,
        "train_acc": summary.train_acc,
        "test_f1_macro": summary.test_f1_macro,
        "epochs": summary.epochs,
        "fit_seconds": summary.fit_seconds,
        "train_images_per_second": summary.train_images_per_second,
        "wall_seconds": time.perf_counter() - start,
    }


def render(payload: dict[str, Any]) -> str:
    """The comparison as Markdown."""
    lines = [
        "# fp32 vs bf16 autocast: test accuracy",
        "",
        f"`{payload['command']}` on {payload['date']}; overrides for both runs: "
        f"`{' '.join(payload['overrides']) or '(none)'}`.",
        "",
        "| precision | seed | epochs | train acc | val acc | test acc | test macro F1 | "
        "train img/s | fit min |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(
            f"| {r['precision']} | {r['seed']} | {r['epochs']} | {r['train_acc']:.4f} | "
            f"{r['val_acc']:.4f} | "
            f"{r['test_acc']:.4f} | {r['test_f1_macro']:.4f} | "
            f"{r['train_images_per_second']:.1f} | {r['fit_seconds'] / 60:.1f} |"
        )
    gap = payload["test_acc_gap_points"]
    verdict = "within" if payload["within_bound"] else "**outside**"
    lines += [
        "",
        f"Test accuracy gap (bf16 - fp32): {gap:+.2f} points, {verdict} the "
        f"{MAX_GAP_POINTS:g}-point bound.",
        "",
    ]
    for seed, spread in payload["fp32_seed_gaps_points"].items():
        lines += [
            f"For scale: fp32 with seed {seed} instead differs from the first fp32 run by "
            f"{spread:+.2f} points.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m mer_lightning.bench.accuracy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument(
        "--fp32-seed",
        type=int,
        action="append",
        default=[],
        help="an extra fp32 run with this seed (repeatable): the seed-to-seed spread, for scale",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both runs")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mer-precision-") as tmp:
        for precision in PRECISIONS:
            Console().print(f"[bold]{precision}[/bold] ...")
            runs.append(train_once(args.overrides, precision, Path(tmp) / precision))
        for seed in args.fp32_seed:
            Console().print(f"[bold]32-true, seed {seed}[/bold] ...")
            runs.append(train_once(args.overrides, "32-true", Path(tmp) / f"seed{seed}", seed))
    gap = 100.0 * (runs[1]["test_acc"] - runs[0]["test_acc"])
    seed_gaps = {str(r["seed"]): 100.0 * (r["test_acc"] - runs[0]["test_acc"]) for r in runs[2:]}
    payload = {
        "benchmark": "test accuracy, fp32 vs bf16-mixed, same seed",
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(
            ["python", "-m", "mer_lightning.bench.accuracy", *(argv or sys.argv[1:])]
        ),
        "overrides": args.overrides,
        "runs": runs,
        "test_acc_gap_points": gap,
        "fp32_seed_gaps_points": seed_gaps,
        "within_bound": abs(gap) <= MAX_GAP_POINTS,
    }
    table = Table(title="fp32 vs bf16-mixed")
    for column in ("precision", "seed", "test acc", "val acc", "train img/s"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            r["precision"],
            str(r["seed"]),
            f"{r['test_acc']:.4f}",
            f"{r['val_acc']:.4f}",
            f"{r['train_images_per_second']:.1f}",
        )
    Console().print(table)
    Console().print(f"test accuracy gap: {gap:+.2f} points")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / "precision.md").write_text(render(payload))
    return payload


if __name__ == "__main__":
    main()
