"""End to end: each paper model fits and tests through the Hydra config, writing every artifact."""

import csv
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mer_lightning.train import run
from tests.helpers import CLASSES, compose_config, fast_overrides


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn1", "cnn2", "resnet18"])
def test_fit_then_test_writes_every_artifact(model, synthetic_root, tmp_path):
    cfg = compose_config(fast_overrides(model, synthetic_root), tmp_path)
    summary = run(cfg)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    assert metrics["model"] == model
    assert metrics["classes"] == list(CLASSES)
    for key in ("train_acc", "val_acc", "test_acc", "test_f1_macro"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["fit_seconds"] > 0 and metrics["train_images_per_second"] > 0
    assert metrics["parameters"] > 0 and metrics["epochs"] == 1 and metrics["seed"] == 42
    assert metrics["train_images_seen"] == 7 * 13  # 14 per class minus the 1 held out
    assert sum(row["support"] for row in metrics["per_class"].values()) == 7 * 6
    assert set(metrics["per_class"]["fear"]) == {"precision", "recall", "f1", "support"}
    assert "test/f1/fear" in metrics["metrics"] and "val/acc" in metrics["metrics"]

    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / metrics["best_checkpoint"]).is_file()
    report = (tmp_path / "classification_report.txt").read_text().splitlines()
    assert report[0].split() == ["precision", "recall", "f1-score", "support"]
    assert [line.split()[0] for line in report[2:9]] == list(CLASSES)
    assert report[-2].split()[:2] == ["macro", "avg"] and report[-1].split()[-1] == "42"
    with (tmp_path / "confusion_matrix.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][1:] == list(CLASSES) and [r[0] for r in rows[1:]] == list(CLASSES)
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == 42
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_epoch", "train/acc", "val/loss", "val/acc", "test/acc"} <= scalars
