"""runs/results.py: one schema for every metrics.json, old files included."""

import json
from pathlib import Path

import pytest

from mer_lightning.core.errors import UserError
from mer_lightning.runs.results import SCHEMA_VERSION, RunResults, read_results, write_results

PUBLISHED = sorted((Path(__file__).resolve().parents[1] / "docs" / "results").rglob("metrics.json"))


def test_every_published_metrics_json_loads_with_its_kind():
    """Files written before the schema had a version still load, as what they are."""
    assert PUBLISHED, "docs/results holds published runs"
    kinds = set()
    for path in PUBLISHED:
        results = read_results(path)
        kinds.add(results.kind)
        assert results.classes and results.test_acc is not None, path
        if results.kind == "train":
            assert results.history and results.fit_seconds is not None, path
        if results.kind == "evaluate":
            assert results.overrides is not None and results.trained_test_acc is not None, path
    assert kinds == {"train", "evaluate", "ensemble"}


def test_a_written_file_reads_back_the_same(tmp_path):
    results = RunResults(
        kind="train",
        model="cnn1",
        seed=3,
        classes=["anger", "fear"],
        metrics={"test/acc": 0.5, "test/f1/fear": 0.25},
        data={"test_images": 4},
        test_acc=0.5,
        history=[{"epoch": 0.0, "val/acc": 0.4}],
    )
    write_results(tmp_path / "metrics.json", results)
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert payload["schema_version"] == SCHEMA_VERSION and payload["kind"] == "train"
    assert read_results(tmp_path / "metrics.json") == results
    assert results.number("test/f1/fear") == 0.25 and results.number("test_acc") == 0.5
    assert results.number("val_acc") is None


def test_a_newer_schema_or_another_file_is_refused_naming_it(tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "kind": "train"}))
    with pytest.raises(UserError, match=r"newer\.json has schema_version .* upgrade"):
        read_results(newer)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "loss": 1}))
    with pytest.raises(UserError, match=r"other\.json is not a mer_lightning metrics\.json"):
        read_results(other)
