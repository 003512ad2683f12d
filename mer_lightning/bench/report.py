"""The benchmark's output: rich tables in the terminal, Markdown and JSON on disk.

All three are rendered from the same rows (see `analysis`), so they cannot disagree.
"""

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SUMMARY_COLUMNS = (
    ("model", "model", "s"),
    ("train img/s", "train_ips", ".1f"),
    ("plain loop img/s", "plain_ips", ".1f"),
    ("reference img/s", "reference_ips", ".1f"),
    ("x reference", "speedup_vs_reference", ".2f"),
    ("inference img/s", "inference_ips", ".0f"),
    ("data img/s", "pipeline_ips", ".0f"),
    ("data / train", "data_headroom", ".0f"),
    ("Lightning overhead", "lightning_overhead", "+.1%"),
    ("train GFLOP/img", "train_gflop_per_image", ".2f"),
    ("GFLOP/s", "achieved_gflops", ".1f"),
    ("MFU", "mfu", ".0%"),
    ("peak RSS MiB", "peak_rss_mb", ".0f"),
)
# The terminal splits the summary in two, to fit 80 columns.
TERMINAL_SUMMARIES = (
    ("Training throughput (images/s)", SUMMARY_COLUMNS[:8]),
    ("Efficiency", (SUMMARY_COLUMNS[0], *SUMMARY_COLUMNS[8:])),
)
VARIANT_COLUMNS = (
    ("variant", "variant", "s"),
    ("model", "model", "s"),
    ("train img/s", "train_ips", ".1f"),
    ("vs default", "train_vs_default", ".2f"),
    ("data img/s", "pipeline_ips", ".0f"),
    ("data vs default", "pipeline_vs_default", ".2f"),
    ("measured as", "measured_as", "s"),
    ("what", "what", "s"),
)
PROTOCOL_COLUMNS = (
    ("model", "model", "s"),
    ("epochs", "epochs", "d"),
    ("train images/epoch", "train_images_per_epoch", "d"),
    ("train s/epoch", "train_seconds_per_epoch", ".0f"),
    ("val s/epoch", "val_seconds_per_epoch", ".1f"),
    ("after fit s", "after_fit_seconds", ".0f"),
    ("total min", "total_seconds", "min"),
)
KERNEL_COLUMNS = (
    ("model", "model", "s"),
    ("conv fwd: time", "conv_fwd_share", ".0%"),
    ("GFLOP/s", "conv_fwd_gflops", ".0f"),
    ("of fp32 peak", "conv_fwd_of_peak", ".0%"),
    ("conv bwd: time", "conv_bwd_share", ".0%"),
    ("GFLOP/s ", "conv_bwd_gflops", ".0f"),
    ("of fp32 peak ", "conv_bwd_of_peak", ".0%"),
    ("matmul: time", "matmul_share", ".0%"),
    ("other: time", "other_share", ".0%"),
)
TARGET_COLUMNS = (
    ("target", "target", "s"),
    ("met", "met", "yes"),
    ("measured", "detail", "s"),
)


def cell(value: Any, spec: str) -> str:
    """One formatted table cell; missing values show as n/a."""
    if value is None:
        return "n/a"
    if spec == "yes":
        return "yes" if value else "**no**"
    if spec == "min":
        return f"{value / 60:.1f}"
    if spec == "s":
        return str(value)
    return format(value, spec)


def markdown_table(rows: list[dict[str, Any]], columns) -> str:
    """A GitHub Markdown table of `rows` with (header, key, format) columns."""
    lines = [
        "| " + " | ".join(header for header, _, _ in columns) + " |",
        "|" + "|".join("---" if spec == "s" else "---:" for _, _, spec in columns) + "|",
    ]
    for row in rows:
        cells = [cell(row.get(key), spec).replace("|", "\\|") for _, key, spec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rich_table(title: str, rows: list[dict[str, Any]], columns) -> Table:
    """The same table for the terminal."""
    table = Table(title=title)
    for header, _, spec in columns:
        table.add_column(header, justify="left" if spec == "s" else "right")
    for row in rows:
        table.add_row(*(cell(row.get(key), spec).replace("**", "") for _, key, spec in columns))
    return table


def render_markdown(payload: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    peak, machine, protocol = payload["peak"], payload["machine"], payload["protocol"]
    budget = payload["budget"]
    out = [
        "# Training benchmark",
        "",
        f"`{payload['command']}` on {payload['date']}, wall time "
        f"{payload['wall_seconds'] / 60:.1f} min. Machine: {machine['cpu']}, "
        f"{machine['cpus']} CPUs, {machine['torch_threads']} torch threads, "
        f"{machine['accelerator']}; torch {machine['torch']}, lightning {machine['lightning']}. "
        f"Budget per training measurement: {budget['warmup']} warm-up steps, then "
        f"up to {budget['steps']} timed steps or {budget['max_seconds']:g} s.",
        "",
        "## Summary",
        "",
        markdown_table(payload["rows"], SUMMARY_COLUMNS),
        "",
        "Columns: *train* is the steady-state rate of `Trainer.fit` with the project's "
        "defaults; *plain loop* does the same work without Lightning; *reference* is the "
        "plain-PyTorch recipe (ImageFolder, per-sample PIL crop/flip/ToTensor, fp32 NCHW, "
        "Adam) with the same net; *data* is the train DataLoader plus augmentation alone; "
        "*Lightning overhead* is the plain loop's rate over the Trainer's, minus one; *MFU* "
        "is training GFLOP/s over the best measured matmul peak.",
        "",
        "## Machine limit",
        "",
        f"Matmul peak: fp32 {peak['fp32_gflops']:.1f} GFLOP/s, bf16 {peak['bf16_gflops']:.2f} "
        f"GFLOP/s ({peak['threads']} threads; native bf16: "
        f"{'yes' if peak['native_bf16'] else 'no'}).",
        "",
        "## Targets",
        "",
        markdown_table(payload["targets"], TARGET_COLUMNS),
        "",
    ]
    if payload.get("kernels"):
        out += [
            "## Where the step time goes",
            "",
            "Share of a training step (plain loop, default settings, under torch.profiler) "
            "spent in each kernel group, and the GFLOP/s the convolution kernels reach on "
            "their own (FlopCounterMode FLOPs / profiled time). MFU cannot exceed the share "
            "of time in FLOP-counted kernels times their efficiency.",
            "",
            markdown_table(payload["kernels"], KERNEL_COLUMNS),
            "",
        ]
    if payload["variants"]:
        out += [
            "## Ways to speed up, measured",
            "",
            "Each row is the default config with one change. Rows measured as plain loops "
            "ran round-robin in one process (so their ratios to the default hold under a "
            "changing machine load); rows with DataLoader workers trained through the "
            "Trainer in a process of their own, next to a control run of the defaults.",
            "",
            markdown_table(payload["variants"], VARIANT_COLUMNS),
            "",
        ]
    out += ["## Data pipeline", "", markdown_table(payload["pipelines"], PIPELINE_COLUMNS), ""]
    if protocol and protocol["models"]:
        settings = protocol["settings"]
        out += [
            "## Paper protocol estimate",
            "",
            f"`experiment=paper`: {settings['max_epochs']} epochs, include_originals="
            f"{str(settings['include_originals']).lower()}, batch {settings['batch_size']}; "
            "epoch time = its images / the measured training rate + validation images / the "
            "measured inference rate.",
            "",
            markdown_table(protocol["models"], PROTOCOL_COLUMNS),
            "",
            f"Total: **{protocol['total_minutes']:.0f} min** for the three models. Lower bound "
            f"(training FLOPs at 100 % of the matmul peak): "
            f"{cell(protocol.get('lower_bound_minutes_at_peak'), '.0f')} min.",
            "",
        ]
    out += [
        "## Settings measured as the default",
        "",
        "```json",
        json.dumps(payload["default_settings"], indent=2),
        "```",
        "",
    ]
    if payload.get("errors"):
        out += ["## Errors", ""] + [f"- {e}" for e in payload["errors"]] + [""]
    return "\n".join(out)


PIPELINE_COLUMNS = (
    ("pipeline", "pipeline", "s"),
    ("model config", "model", "s"),
    ("img/s", "images_per_s", ".0f"),
    ("augmentation", "augmentation", "s"),
    ("workers", "num_workers", "d"),
)


def print_report(payload: dict[str, Any], console: Console | None = None) -> None:
    """The summary, targets, variants and protocol tables in the terminal."""
    console = console or Console()
    for title, columns in TERMINAL_SUMMARIES:
        console.print(rich_table(title, payload["rows"], columns))
    peak = payload["peak"]
    console.print(
        f"matmul peak: fp32 {peak['fp32_gflops']:.1f} GFLOP/s, bf16 {peak['bf16_gflops']:.2f} "
        f"GFLOP/s (native bf16: {peak['native_bf16']})"
    )
    console.print(rich_table("Targets", payload["targets"], TARGET_COLUMNS))
    if payload.get("kernels"):
        console.print(rich_table("Where the step time goes", payload["kernels"], KERNEL_COLUMNS))
    if payload["variants"]:
        console.print(
            rich_table("One change from the defaults", payload["variants"], VARIANT_COLUMNS)
        )
    console.print(rich_table("Data pipeline", payload["pipelines"], PIPELINE_COLUMNS))
    protocol = payload["protocol"]
    if protocol and protocol["models"]:
        console.print(rich_table("Paper protocol estimate", protocol["models"], PROTOCOL_COLUMNS))
        console.print(f"paper protocol total: {protocol['total_minutes']:.0f} min")


def write_report(payload: dict[str, Any], out_dir: Path, stem: str = "training") -> list[Path]:
    """`<stem>.json` and `<stem>.md` in out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(render_markdown(payload))
    return [json_path, md_path]
