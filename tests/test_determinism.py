"""The same seed twice on CPU gives identical accuracies in metrics.json."""

import json

import pytest

from mer_lightning.train import run
from tests.helpers import compose_config, fast_overrides

ACCURACIES = ("train_acc", "val_acc", "test_acc", "test_f1_macro", "metrics", "per_class")


@pytest.mark.slow
def test_same_seed_twice_writes_identical_accuracies(synthetic_root, tmp_path):
    """CNN2 with dropout and every augmentation on: all randomness comes from the seed."""
    overrides = fast_overrides("cnn2", synthetic_root, "seed=3", "trainer.limit_predict_batches=1")
    written = []
    for name in ("a", "b"):
        run(compose_config(overrides, tmp_path / name))
        written.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    first, second = written
    for key in ACCURACIES:
        assert first[key] == second[key], key
    assert first["history"][0]["train/loss_epoch"] == second["history"][0]["train/loss_epoch"]
