"""Ratios and targets from raw measurements: speed-up, MFU, data headroom, loop overhead.

Kept apart from the measuring code so that the same numbers feed the terminal table, the
Markdown and the JSON, and can be checked without timing anything.
"""

from typing import Any

from mer_lightning.bench.variants import CONTROL

# The targets, as ratios measured in one run.
MIN_SPEEDUP_VS_REFERENCE = 3.0  # for CNN1 and CNN2
SPEEDUP_MODELS = ("cnn1", "cnn2")
MIN_MFU = 0.70
MIN_DATA_HEADROOM = 10.0
MAX_LIGHTNING_OVERHEAD = 0.05
MAX_PROTOCOL_MINUTES = 60.0


def _ips(result: dict[str, Any], key: str) -> float | None:
    part = result.get(key) or {}
    return part.get("images_per_s")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def derive(result: dict[str, Any], peak: dict[str, Any] | None) -> dict[str, Any]:
    """Per-model figures read off the raw result and the matmul peak."""
    train, plain, ref = _ips(result, "trainer"), _ips(result, "plain"), _ips(result, "reference")
    flops = (result.get("flops") or {}).get("train")
    achieved = train * flops / 1e9 if train and flops else None
    ref_achieved = ref * flops / 1e9 if ref and flops else None
    fp32 = (peak or {}).get("fp32_gflops")
    bf16 = (peak or {}).get("bf16_gflops")
    best = max(p for p in (fp32, bf16, 0.0) if p is not None) or None
    return {
        "model": result["model"],
        "train_ips": train,
        "plain_ips": plain,
        "reference_ips": ref,
        "inference_ips": _ips(result, "inference"),
        "pipeline_ips": _ips(result, "pipeline"),
        "reference_pipeline_ips": _ips(result, "reference_pipeline"),
        "speedup_vs_reference": _ratio(train, ref),
        "data_headroom": _ratio(_ips(result, "pipeline"), train),
        "lightning_overhead": (plain / train - 1.0) if plain and train else None,
        "train_gflop_per_image": flops / 1e9 if flops else None,
        "achieved_gflops": achieved,
        "reference_achieved_gflops": ref_achieved,
        "mfu": _ratio(achieved, best),
        "mfu_vs_fp32_peak": _ratio(achieved, fp32),
        "mfu_vs_bf16_peak": _ratio(achieved, bf16),
        "reference_mfu": _ratio(ref_achieved, best),
        "max_speedup_at_peak": _ratio(best, ref_achieved),
        "peak_rss_mb": result.get("peak_rss_mb"),
        "parameters": result.get("parameters"),
        "settings": result.get("settings"),
    }


def targets(
    rows: list[dict[str, Any]], protocol: dict[str, Any] | None, peak: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Each target of the issue with its measured value and whether it is met."""
    found: list[dict[str, Any]] = []
    by_model = {row["model"]: row for row in rows}
    for name in SPEEDUP_MODELS:
        row = by_model.get(name)
        if row and row["speedup_vs_reference"] is not None:
            found.append(
                _target(
                    f"{name}: training >= {MIN_SPEEDUP_VS_REFERENCE:g}x the reference recipe",
                    row["speedup_vs_reference"],
                    row["speedup_vs_reference"] >= MIN_SPEEDUP_VS_REFERENCE,
                    f"{row['speedup_vs_reference']:.2f}x; at 100 % of the matmul peak the "
                    f"ceiling is {_fmt(row['max_speedup_at_peak'], '.2f')}x",
                )
            )
    best_name = _best_peak_name(peak)
    other_name = "bf16" if best_name != "bf16" else "fp32"  # the peak the MFU was not taken of
    for row in rows:
        if row["mfu"] is not None:
            found.append(
                _target(
                    f"{row['model']}: training MFU >= {MIN_MFU:.0%} of the matmul peak "
                    "(best of fp32, bf16)",
                    row["mfu"],
                    row["mfu"] >= MIN_MFU,
                    f"{row['achieved_gflops']:.1f} GFLOP/s = {row['mfu']:.0%} of the {best_name} "
                    f"peak; {_fmt(row[f'mfu_vs_{other_name}_peak'], '.0%')} of the {other_name} "
                    "peak",
                )
            )
    for row in rows:
        if row["data_headroom"] is not None:
            found.append(
                _target(
                    f"{row['model']}: data pipeline >= {MIN_DATA_HEADROOM:g}x the training step",
                    row["data_headroom"],
                    row["data_headroom"] >= MIN_DATA_HEADROOM,
                    f"{row['pipeline_ips']:.0f} vs {row['train_ips']:.1f} images/s",
                )
            )
    for row in rows:
        if row["lightning_overhead"] is not None:
            found.append(
                _target(
                    f"{row['model']}: Lightning overhead <= {MAX_LIGHTNING_OVERHEAD:.0%} "
                    "vs a plain loop",
                    row["lightning_overhead"],
                    row["lightning_overhead"] <= MAX_LIGHTNING_OVERHEAD,
                    f"Trainer {row['train_ips']:.1f} vs plain loop {row['plain_ips']:.1f} images/s",
                )
            )
    if protocol and protocol.get("models"):
        minutes = protocol["total_minutes"]
        found.append(
            _target(
                f"paper protocol (3 models) <= {MAX_PROTOCOL_MINUTES:g} min",
                minutes,
                protocol["complete"] and minutes <= MAX_PROTOCOL_MINUTES,
                f"{minutes:.0f} min estimated; lower bound at 100 % of the matmul peak "
                f"{_fmt(protocol.get('lower_bound_minutes_at_peak'), '.0f')} min",
            )
        )
    return found


def _target(name: str, value: float, met: bool, detail: str) -> dict[str, Any]:
    return {"target": name, "value": value, "met": bool(met), "detail": detail}


def _best_peak_name(peak: dict[str, Any] | None) -> str:
    if not peak:
        return "matmul"
    return "fp32" if peak.get("fp32_gflops", 0) >= peak.get("bf16_gflops", 0) else "bf16"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def compare_variants(
    variants: list[dict[str, Any]], defaults: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each variant's training and data rates next to the default's, as a ratio.

    The default is the control measured the same way (ladder or own process) when there
    is one, else the per-model run.
    """
    controls = {
        (v["model"], v.get("measured_as")): v
        for v in variants
        if v["variant"] == CONTROL and _ips(v, "trainer")
    }
    rows = []
    for variant in variants:
        control = controls.get((variant["model"], variant.get("measured_as")))
        base = (
            {"train_ips": _ips(control, "trainer"), "pipeline_ips": _ips(control, "pipeline")}
            if control
            else defaults.get(variant["model"], {})
        )
        train, pipeline = _ips(variant, "trainer"), _ips(variant, "pipeline")
        rows.append(
            {
                "variant": variant["variant"],
                "model": variant["model"],
                "what": variant.get("what", ""),
                "measured_as": variant.get("measured_as", ""),
                "overrides": variant["overrides"],
                "train_ips": train,
                "pipeline_ips": pipeline,
                "train_vs_default": _ratio(train, base.get("train_ips")),
                "pipeline_vs_default": _ratio(pipeline, base.get("pipeline_ips")),
                "error": variant.get("error"),
            }
        )
    return rows


def kernel_rows(results: list[dict[str, Any]], peak: dict[str, Any] | None) -> list[dict]:
    """Per model: each kernel group's share of the step and its GFLOP/s (and % of peak)."""
    fp32 = (peak or {}).get("fp32_gflops")
    rows = []
    for result in results:
        groups = (result.get("kernels") or {}).get("groups")
        if not groups:
            continue
        row: dict[str, Any] = {"model": result["model"]}
        for name, key in (
            ("conv forward", "conv_fwd"),
            ("conv backward", "conv_bwd"),
            ("matmul", "matmul"),
            ("everything else", "other"),
        ):
            group = groups.get(name, {})
            row[f"{key}_share"] = group.get("share_of_step")
            row[f"{key}_gflops"] = group.get("gflops")
            row[f"{key}_of_peak"] = _ratio(group.get("gflops"), fp32)
        rows.append(row)
    return rows
