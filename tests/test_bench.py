"""The training benchmark command: structure of its JSON and Markdown, never its timings."""

import json

import pytest

from mer_lightning.bench import __main__ as bench
from mer_lightning.bench import accuracy, parallel
from mer_lightning.bench.analysis import derive, targets
from mer_lightning.bench.protocol import estimate_protocol
from mer_lightning.bench.report import render_markdown
from mer_lightning.bench.timing import Budget, StepTimes, time_loop

TINY = [
    "--warmup",
    "1",
    "--steps",
    "2",
    "--max-seconds",
    "5",
    "--peak-seconds",
    "0.05",
    "--peak-sizes",
    "64",
    "--bf16-peak-sizes",
    "32",
]
TINY_OVERRIDES = [
    "model.channels=[8,16,16]",
    "model.hidden=[32,32]",
    "data.image_size=32",
    "data.batch_size=16",
    "data.eval_batch_size=32",
]
SUMMARY_KEYS = {
    "model",
    "train_ips",
    "plain_ips",
    "reference_ips",
    "speedup_vs_reference",
    "inference_ips",
    "pipeline_ips",
    "data_headroom",
    "lightning_overhead",
    "train_gflop_per_image",
    "achieved_gflops",
    "mfu",
    "peak_rss_mb",
}


def fake_result(model: str, train: float, plain: float, reference: float) -> dict:
    sizes = {"train": 900, "val": 100, "test": 200}
    return {
        "model": model,
        "trainer": {"images_per_s": train, "images_per_s_mean": train, "split_sizes": sizes},
        "plain": {"images_per_s": plain},
        "reference": {"images_per_s": reference},
        "inference": {"images_per_s": 10 * train, "images_per_s_mean": 10 * train},
        "pipeline": {"images_per_s": 100 * train},
        "flops": {"train": 2e9, "forward": 0.7e9},
        "peak_rss_mb": 500.0,
    }


def test_budget_stops_at_steps_or_time_cap():
    times = time_loop(lambda batch: None, [([0] * 4, None)] * 3, Budget(warmup=2, steps=5))
    assert len(times.warmup_seconds) == 2 and times.images == [4] * 5
    capped = Budget(warmup=0, steps=100, max_seconds=0.0, min_steps=3)
    assert len(time_loop(lambda batch: None, [([0], None)], capped).seconds) == 3
    summary = StepTimes(seconds=[1.0, 1.0, 4.0], images=[8, 8, 8]).summary()
    assert summary["images_per_s"] == 8.0 and summary["images_per_s_mean"] == 4.0


def test_ratios_targets_and_protocol_from_fake_measurements():
    peak = {"fp32_gflops": 100.0, "bf16_gflops": 1.0, "native_bf16": False}
    rows = [derive(fake_result("cnn1", 40.0, 41.0, 20.0), peak)]
    row = rows[0]
    assert row["speedup_vs_reference"] == pytest.approx(2.0)
    assert row["lightning_overhead"] == pytest.approx(0.025)
    assert row["achieved_gflops"] == pytest.approx(80.0)
    assert row["mfu"] == pytest.approx(0.8) and row["mfu_vs_bf16_peak"] == pytest.approx(80.0)
    assert row["max_speedup_at_peak"] == pytest.approx(2.5)
    settings = {"max_epochs": 10, "include_originals": True, "batch_size": 64}
    protocol = estimate_protocol([fake_result("cnn1", 40.0, 41.0, 20.0)], settings, 100.0)
    (model,) = protocol["models"]
    assert model["train_images_per_epoch"] == 1800
    assert model["total_seconds"] == pytest.approx(10 * (45 + 0.25) + 1200 / 400)
    assert protocol["lower_bound_minutes_at_peak"] == pytest.approx(2e9 * 18000 / 100e9 / 60)
    met = {t["target"].split(":")[0] + str(t["met"]) for t in targets(rows, protocol, peak)}
    assert {"cnn1False", "cnn1True"} <= met  # 2x < 3x fails; 2.5 % overhead passes


def test_mfu_target_names_both_peaks_on_a_cpu_with_native_bf16():
    peak = {"fp32_gflops": 100.0, "bf16_gflops": 200.0, "native_bf16": True}
    rows = [derive(fake_result("cnn1", 40.0, 41.0, 20.0), peak)]  # 80 GFLOP/s achieved
    (mfu,) = [t for t in targets(rows, None, peak) if "MFU" in t["target"]]
    assert mfu["value"] == pytest.approx(0.4)
    assert mfu["detail"] == "80.0 GFLOP/s = 40% of the bf16 peak; 80% of the fp32 peak"


@pytest.mark.slow
@pytest.mark.heavy
def test_bench_writes_json_and_markdown(synthetic_root, tmp_path):
    out = tmp_path / "bench"
    argv = [*TINY, "--models", "cnn1", "--variants", "nchw", "--out", str(out)]
    payload = bench.main([*argv, f"data.root={synthetic_root}", *TINY_OVERRIDES])

    written = json.loads((out / "training.json").read_text())
    assert written == json.loads(json.dumps(payload))
    assert set(written["peak"]) >= {"fp32_gflops", "bf16_gflops", "native_bf16"}
    (row,) = written["rows"]
    assert set(row) >= SUMMARY_KEYS and row["model"] == "cnn1"
    (result,) = written["results"]
    for part in ("trainer", "plain", "reference", "inference", "pipeline", "reference_pipeline"):
        assert result[part]["steps"] >= 1 and result[part]["images_per_s"] > 0, part
    assert result["trainer"]["warmup_steps"] == 1
    assert result["flops"]["train"] > result["flops"]["forward"] > 0
    assert result["peak_rss_mb"] > 0 and result["settings"]["batch_augment"] is True
    control, variant = written["variants"]
    assert control["variant"] == "default" and control["train_vs_default"] == pytest.approx(1.0)
    assert control["measured_as"] == variant["measured_as"] == bench.LADDER
    assert variant["variant"] == "nchw" and variant["train_vs_default"] > 0
    (kernels,) = written["kernels"]
    assert 0 < kernels["conv_bwd_share"] < 1 and kernels["conv_fwd_gflops"] > 0
    assert written["protocol"]["settings"]["max_epochs"] == 30
    assert written["protocol"]["models"][0]["model"] == "cnn1"
    assert {t["target"].split(":")[0] for t in written["targets"]} >= {"cnn1"}
    assert not written["errors"]

    markdown = (out / "training.md").read_text()
    assert markdown == render_markdown(written)
    for heading in ("## Summary", "## Targets", "## Where the step", "## Ways to", "## Paper"):
        assert heading in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| model | train"))
    assert "x reference" in header and "MFU" in header and "peak RSS MiB" in header


@pytest.mark.slow
def test_a_failed_measurement_is_reported_not_raised(synthetic_root, tmp_path):
    payload = bench.main(
        [*TINY, "--models", "nosuchmodel", "--variants", "--out", str(tmp_path)]
        + [f"data.root={synthetic_root}"]
    )
    assert payload["rows"] == [] and "nosuchmodel" in payload["errors"][0]
    assert "## Errors" in (tmp_path / "training.md").read_text()


@pytest.mark.slow
def test_precision_comparison_writes_both_runs(synthetic_root, tmp_path):
    overrides = [f"data.root={synthetic_root}", *TINY_OVERRIDES, "trainer.max_epochs=1"]
    payload = accuracy.main(["--out", str(tmp_path), *overrides, "callbacks.progress_bar=null"])
    assert [r["precision"] for r in payload["runs"]] == ["32-true", "bf16-mixed"]
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in payload["runs"])
    written = json.loads((tmp_path / "precision.json").read_text())
    assert written["test_acc_gap_points"] == pytest.approx(
        100 * (written["runs"][1]["test_acc"] - written["runs"][0]["test_acc"])
    )
    assert "bf16-mixed" in (tmp_path / "precision.md").read_text()


@pytest.mark.slow
@pytest.mark.heavy
def test_parallel_jobs_adds_up_the_rates_of_jobs_run_at_once(synthetic_root, tmp_path):
    args = ["--models", "cnn1", "--jobs", "1", "2", "--warmup", "1", "--steps", "2"]
    overrides = [f"data.root={synthetic_root}", *TINY_OVERRIDES]
    payload = parallel.main([*args, "--out", str(tmp_path), *overrides])

    one, two = payload["rows"]
    assert (one["jobs"], two["jobs"]) == (1, 2) and not one["errors"] + two["errors"]
    assert len(one["per_job_images_per_s"]) == 1 and len(two["per_job_images_per_s"]) == 2
    assert two["total_images_per_s"] == pytest.approx(sum(two["per_job_images_per_s"]))
    assert two["vs_one_job"] == pytest.approx(two["total_images_per_s"] / one["total_images_per_s"])
    assert one["threads_per_job"] >= two["threads_per_job"] >= 1
    written = json.loads((tmp_path / "parallel_jobs.json").read_text())
    assert written["rows"] == payload["rows"]
    assert "| cnn1 | 2 |" in (tmp_path / "parallel_jobs.md").read_text()
