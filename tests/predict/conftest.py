"""One tiny trained checkpoint shared by the predict and export tests."""

import json
from pathlib import Path

import pytest

from mer_lightning.train import run
from tests.helpers import compose_config, fast_overrides


@pytest.fixture(scope="session")
def checkpoint(synthetic_root, tmp_path_factory) -> Path:
    """The best checkpoint of a one-epoch CNN1 run on the synthetic dataset (32x32 input)."""
    run_dir = tmp_path_factory.mktemp("train_run")
    run(compose_config(fast_overrides("cnn1", synthetic_root, "logger=csv"), run_dir))
    best = json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"]
    return run_dir / best
