"""`python -m mer_lightning.bench`: training speed of each model against the references.

In one run on one machine: the matmul peak (fp32 and bf16), then for each model, in a
process of its own, the steady-state training rate through the real Trainer with the
project's defaults, interleaved step by step with a plain loop doing the Trainer's work and
with the plain-PyTorch reference recipe; peak RSS, the data pipeline alone, inference,
FLOPs per image and a kernel time breakdown; then the speed-up variants (one change each
from the defaults, see `variants.py`). It prints rich tables, writes
`<out>/training.{md,json}` and estimates the paper protocol's wall time.

Extra arguments are Hydra overrides of conf/train.yaml applied to every measurement
(e.g. `data.root=...`). `python -m mer_lightning.bench.latency` is the separate
single-image prediction latency benchmark.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning
import torch
from rich.console import Console

from mer_lightning.bench.analysis import compare_variants, derive, kernel_rows, targets
from mer_lightning.bench.peak import measure_peak
from mer_lightning.bench.protocol import estimate_protocol, protocol_settings
from mer_lightning.bench.report import print_report, write_report
from mer_lightning.bench.variants import CONTROL, DEFAULT_VARIANTS, VARIANTS, Variant
from mer_lightning.runs.config import compose_run_config
from mer_lightning.runs.console import command_name, help_epilog

MODELS = ("cnn1", "cnn2", "resnet18")
LOG_TAIL = 30  # lines of a failed measurement's log shown in the report
LADDER = "plain loops, round-robin in one process"
SEPARATE = "Trainer, own process"
CONTROL_WHAT = "the defaults: the control the rows measured the same way are compared with"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=command_name("mer_lightning.bench", "mer-bench"),
        description=__doc__.splitlines()[0],
        epilog=help_epilog(
            "mer-bench",
            "mer_lightning.bench",
            "--models cnn1 --variants",
            "--out outputs/bench data.root=path/to/Micro_Expressions",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--variants",
        nargs="*",
        default=list(DEFAULT_VARIANTS),
        choices=sorted(VARIANTS),
        help="speed-up variants to measure (none: give the flag alone)",
    )
    parser.add_argument("--variant-model", default="cnn1", help="model the variants train")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per measurement")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per measurement")
    parser.add_argument(
        "--max-seconds", type=float, default=45.0, help="time cap of the timed steps"
    )
    parser.add_argument("--peak-seconds", type=float, default=3.0, help="per matmul size")
    parser.add_argument("--peak-sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--bf16-peak-sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--no-reference", action="store_true", help="skip the reference recipe")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every measurement")
    return parser.parse_args(argv)


def worker_command(
    model: str,
    overrides: list[str],
    tasks: list[str],
    args: argparse.Namespace,
    out: Path,
    warmup: int | None = None,
    steps: int | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The command line of one measurement process (`mer_lightning.bench.worker`)."""
    return [
        sys.executable,
        "-m",
        "mer_lightning.bench.worker",
        "--model",
        model,
        "--tasks",
        ",".join(tasks),
        "--warmup",
        str(args.warmup if warmup is None else warmup),
        "--steps",
        str(args.steps if steps is None else steps),
        "--max-seconds",
        str(args.max_seconds),
        "--out",
        str(out),
        *extra,
        *overrides,
    ]


def worker_result(model: str, overrides: list[str], returncode: int, out: Path, log: Path):
    """A finished measurement process's JSON, or {'error': ...} with its log's tail."""
    if returncode != 0 or not out.is_file():
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        return {"model": model, "overrides": overrides, "error": "\n".join(tail)}
    return json.loads(out.read_text())


def run_worker(
    model: str,
    overrides: list[str],
    tasks: list[str],
    args: argparse.Namespace,
    workdir: Path,
    tag: str,
    warmup: int | None = None,
    steps: int | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One measurement process; returns its JSON, or {'error': ...} with the log's tail."""
    out, log = workdir / f"{tag}.json", workdir / f"{tag}.log"
    command = worker_command(model, overrides, tasks, args, out, warmup, steps, extra)
    with log.open("w") as stream:
        status = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=False)
    return worker_result(model, overrides, status.returncode, out, log)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pipeline_rows(results: list[dict], variants: list[dict]) -> list[dict[str, Any]]:
    """Data-loading rates: the reference recipe's, the default's and the variants'."""
    rows = []
    for result in results:
        if result.get("reference_pipeline"):
            rows.append(
                {
                    "pipeline": "reference: ImageFolder, JPEG decode + PIL per sample",
                    "model": result["model"],
                    **result["reference_pipeline"],
                }
            )
        if result.get("pipeline"):
            rows.append(
                {
                    "pipeline": "default: in-memory uint8",
                    "model": result["model"],
                    **result["pipeline"],
                }
            )
    for variant in variants:
        if variant.get("pipeline"):
            rows.append(
                {
                    "pipeline": f"variant {variant['variant']}",
                    "model": variant["model"],
                    **variant["pipeline"],
                }
            )
    return rows


def measure_variants(
    args: argparse.Namespace, workdir: Path, console: Console, errors: list[str]
) -> list[dict[str, Any]]:
    """The ladder of variants in one process, then each separate variant in its own."""
    chosen = [VARIANTS[name] for name in args.variants or []]
    rungs = [v for v in chosen if not v.separate]
    separate = [v for v in chosen if v.separate]
    model, found = args.variant_model, []
    if rungs:
        console.print(f"[bold]variants[/bold] {', '.join(v.name for v in rungs)} ({model}) ...")
        spec = {CONTROL: {"overrides": [], "pipeline": any(v.pipeline for v in rungs)}}
        for v in rungs:
            spec[v.name] = {
                "overrides": list(v.overrides),
                "pipeline": v.pipeline,
                "warmup": v.warmup,
                "steps": v.steps,
            }
        spec_path = workdir / "ladder-spec.json"
        spec_path.write_text(json.dumps(spec))
        ladder = run_worker(
            model, args.overrides, [], args, workdir, "ladder", extra=("--ladder", str(spec_path))
        )
        if "error" in ladder:
            errors.append(f"variants: {ladder['error']}")
        else:
            for name, rung in spec.items():
                found.append(
                    {
                        "variant": name,
                        "model": model,
                        "what": VARIANTS[name].what if name in VARIANTS else CONTROL_WHAT,
                        "overrides": rung["overrides"],
                        "measured_as": LADDER,
                        "trainer": ladder["ladder"][name],
                        "pipeline": ladder["pipelines"].get(name),
                    }
                )
    control = Variant(CONTROL, CONTROL_WHAT, ())
    for v in [control, *separate] if separate else []:
        console.print(f"[bold]variant {v.name}[/bold] ({model}, own Trainer process) ...")
        measured = run_worker(
            model,
            [*args.overrides, *v.overrides],
            ["trainer", "pipeline"],
            args,
            workdir,
            f"variant-{v.name}",
            warmup=v.warmup,
            steps=v.steps,
        )
        measured.update(
            variant=v.name, what=v.what, overrides=list(v.overrides), measured_as=SEPARATE
        )
        if "error" in measured:
            errors.append(f"variant {v.name}: {measured['error']}")
        found.append(measured)
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print, write; returns the JSON payload."""
    args = parse_args(argv)
    console = Console()
    started = time.perf_counter()
    errors: list[str] = []
    console.print("[bold]matmul peak[/bold] ...")
    peak = measure_peak(tuple(args.peak_sizes), tuple(args.bf16_peak_sizes), args.peak_seconds)
    tasks = ["trainer", "pipeline", "inference", "plain", "flops", "kernels"]
    if not args.no_reference:
        tasks.append("reference")
    results, variants = [], []
    with tempfile.TemporaryDirectory(prefix="mer-bench-") as tmp:
        workdir = Path(tmp)
        for model in args.models:
            console.print(
                f"[bold]{model}[/bold]: Trainer, data, inference, plain loop, reference ..."
            )
            result = run_worker(model, args.overrides, tasks, args, workdir, model)
            if "error" in result:
                errors.append(f"{model}: {result['error']}")
            else:
                results.append(result)
        variants = measure_variants(args, workdir, console, errors)
        paper_cfg = compose_run_config(["experiment=paper", *args.overrides], workdir / "paper")
        default_cfg = compose_run_config(args.overrides, workdir / "default")
    rows = [derive(result, peak) for result in results]
    best_peak = max(peak["fp32_gflops"], peak["bf16_gflops"])
    protocol = estimate_protocol(results, protocol_settings(paper_cfg), best_peak)
    payload = {
        "benchmark": "training throughput vs the plain-PyTorch recipe and the matmul peak",
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "mer_lightning.bench", *(argv or sys.argv[1:])]),
        "wall_seconds": 0.0,
        "machine": machine_info(),
        "budget": {"warmup": args.warmup, "steps": args.steps, "max_seconds": args.max_seconds},
        "default_settings": results[0]["settings"] if results else None,
        "data_root": str(default_cfg.data.root),
        "peak": peak,
        "rows": rows,
        "targets": targets(rows, protocol, peak),
        "kernels": kernel_rows(results, peak),
        "variants": compare_variants(variants, {row["model"]: row for row in rows}),
        "pipelines": pipeline_rows(results, variants),
        "protocol": protocol,
        "results": results,
        "variant_results": variants,
        "errors": errors,
    }
    payload["wall_seconds"] = time.perf_counter() - started
    print_report(payload, console)
    for path in write_report(payload, args.out):
        console.print(f"written {path}")
    for error in errors:
        console.print(f"[red]failed[/red] {error}")
    return payload


def cli() -> int:
    """`mer-bench`: main() for a console script, which exits with the value returned."""
    main()
    return 0


if __name__ == "__main__":
    main()
