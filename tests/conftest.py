"""Fixtures: one synthetic dataset per session, the real dataset when present."""

import os
from pathlib import Path

import pytest

from tests.helpers import write_dataset

REAL_DATA = (
    Path(__file__).resolve().parents[2] / "shared/datasets/micro-expressions/Micro_Expressions"
)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small, learnable dataset in the Kaggle layout (7 classes, 14 train / 6 test each)."""
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real Kaggle dataset from ../shared; the test is skipped when it is absent."""
    root = Path(os.environ.get("MER_REAL_DATA", REAL_DATA))
    if not (root / "train").is_dir():
        pytest.skip(f"real dataset not found at {root}")
    return root


@pytest.fixture(autouse=True)
def _no_network_and_quiet(monkeypatch, tmp_path):
    """Keep caches out of $HOME and make accidental downloads fail fast."""
    monkeypatch.setenv("MER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
