"""The latency benchmark measures the full pipeline and writes its JSON."""

import json

import pytest

from mer_lightning.bench import latency


@pytest.mark.slow
def test_latency_benchmark_times_each_model_with_face_detection(tmp_path, capsys):
    out = tmp_path / "latency.json"
    args = ["--models", "cnn1", "resnet18_slim", "--runs", "3", "--warmup", "1"]

    payload = latency.main([*args, "--image-size", "32", "--runtime", "torch", "--out", str(out)])

    assert json.loads(out.read_text()) == payload
    assert [row["model"] for row in payload["results"]] == ["cnn1", "resnet18_slim"]
    assert {row["runtime"] for row in payload["results"]} == {"torch"}
    for row in payload["results"]:
        # Detection and the whole pipeline are timed in separate loops: on a loaded machine
        # their medians need not be ordered, so only each figure is checked.
        assert row["detect_median_ms"] > 0 and 0 < row["median_ms"] <= row["p90_ms"]
        assert row["forward_median_ms"] > 0 and row["parameters"] > 0
    assert payload["runs"] == 3 and payload["photo_shape"][:2] == [480, 480]
    assert "Single-image prediction latency" in capsys.readouterr().out


@pytest.mark.slow
def test_latency_benchmark_times_a_trained_checkpoint_with_its_mirror_averaging(
    checkpoint, tmp_path
):
    """--ckpt: the figure a predict user meets, the trained model's own settings included."""
    out = tmp_path / "latency.json"
    payload = latency.main(
        ["--ckpt", str(checkpoint), "--runs", "2", "--warmup", "1", "--out", str(out)]
    )

    [row] = payload["results"]
    assert row["model"].startswith(str(checkpoint)) and row["tta_hflip"] is False
    assert row["runtime"] == "onnxruntime"  # the engine predict picks by default
    assert row["parameters"] > 0 and row["median_ms"] > 0
    assert isinstance(payload["cpu_native_bf16"], bool)
