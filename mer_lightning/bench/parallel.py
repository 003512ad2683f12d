"""`python -m mer_lightning.bench.parallel`: how many sweep jobs at once train fastest.

A sweep of independent runs can give each job every core, one job after the other (the
basic launcher), or run N jobs at once with cores // N torch threads each
(`hydra/launcher=joblib hydra.launcher.n_jobs=N`). This measures the machine's total
training images/s both ways: N real Trainer processes (`bench.worker --tasks trainer`)
started together, each with OMP_NUM_THREADS = cores // N, their steady-state rates summed.
Writes `<out>/parallel_jobs.{md,json}`.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mer_lightning.bench.__main__ import machine_info, worker_command, worker_result

PROG = "mer_lightning.bench.parallel"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn1", "resnet18"])
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=sorted({1, cores}),
        help="jobs at once to compare (each gets cores // jobs threads)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per job")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per job")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time cap per job")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job")
    return parser.parse_args(argv)


def measure_layout(
    model: str, jobs: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """`jobs` Trainer processes of `model` at once; their rates and the machine's total."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    running = []
    for index in range(jobs):
        tag = f"{model}-{jobs}jobs-{index}"
        out, log = workdir / f"{tag}.json", workdir / f"{tag}.log"
        command = worker_command(model, args.overrides, ["trainer"], args, out)
        with log.open("w") as stream:
            process = subprocess.Popen(command, env=env, stdout=stream, stderr=subprocess.STDOUT)
        running.append((process, out, log))
    results = [
        worker_result(model, args.overrides, process.wait(), out, log)
        for process, out, log in running
    ]
    errors = [r["error"] for r in results if "error" in r]
    rates = [r["trainer"]["images_per_s"] for r in results if "error" not in r]
    return {
        "model": model,
        "jobs": jobs,
        "threads_per_job": threads,
        "per_job_images_per_s": rates,
        "total_images_per_s": sum(rates) if not errors else None,
        "errors": errors,
    }


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each layout's total over the one-job layout of the same model (None without it)."""
    single = {r["model"]: r["total_images_per_s"] for r in rows if r["jobs"] == 1}
    for row in rows:
        base, total = single.get(row["model"]), row["total_images_per_s"]
        row["vs_one_job"] = total / base if base and total is not None else None
    return rows


def render_markdown(payload: dict[str, Any]) -> str:
    """The report: one row per model and layout."""
    lines = [
        "# Sweep jobs at once: total training throughput",
        "",
        f"`{payload['command']}` on {payload['date']}, wall time "
        f"{payload['wall_seconds'] / 60:.1f} min; {payload['machine']['cpus']} CPUs "
        f"({payload['machine']['cpu']}). Each job is a real Trainer process "
        "(`bench.worker --tasks trainer`); the jobs of a row start together, each with "
        "OMP_NUM_THREADS = cores // jobs, and their steady-state rates add up to the total.",
        "",
        "| model | jobs at once | threads per job | per-job img/s | total img/s | vs one job |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in payload["rows"]:
        per_job = ", ".join(f"{v:.1f}" for v in r["per_job_images_per_s"]) or "failed"
        total = "—" if r["total_images_per_s"] is None else f"{r['total_images_per_s']:.1f}"
        ratio = "—" if r["vs_one_job"] is None else f"{r['vs_one_job']:.2f}x"
        lines.append(
            f"| {r['model']} | {r['jobs']} | {r['threads_per_job']} | {per_job} | {total} "
            f"| {ratio} |"
        )
    for r in payload["rows"]:
        lines += [f"\n{r['model']}, {r['jobs']} jobs failed:\n\n```\n{e}\n```" for e in r["errors"]]
    return "\n".join(lines) + "\n"


def print_table(payload: dict[str, Any], console: Console) -> None:
    table = Table(title="Sweep jobs at once: total training images/s")
    for column in ("model", "jobs", "threads/job", "total img/s", "vs one job"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in payload["rows"]:
        table.add_row(
            r["model"],
            str(r["jobs"]),
            str(r["threads_per_job"]),
            "failed" if r["total_images_per_s"] is None else f"{r['total_images_per_s']:.1f}",
            "—" if r["vs_one_job"] is None else f"{r['vs_one_job']:.2f}x",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every model under every layout, print, write; returns the JSON payload."""
    args = parse_args(argv)
    console = Console()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mer-bench-parallel-") as tmp:
        for model in args.models:
            for jobs in args.jobs:
                console.print(f"[bold]{model}[/bold]: {jobs} job(s) at once ...")
                rows.append(measure_layout(model, jobs, args, Path(tmp)))
    payload = {
        "benchmark": "total training throughput of N sweep jobs at once",
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(
            ["python", "-m", "mer_lightning.bench.parallel", *(argv or sys.argv[1:])]
        ),
        "wall_seconds": time.perf_counter() - started,
        "machine": machine_info(),
        "rows": with_ratios(rows),
    }
    print_table(payload, console)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parallel_jobs.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / "parallel_jobs.md").write_text(render_markdown(payload))
    console.print(f"written {args.out / 'parallel_jobs.md'}, parallel_jobs.json")
    return payload


if __name__ == "__main__":
    main()
