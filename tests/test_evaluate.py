"""`python -m mer_lightning.evaluate`: a finished run's best checkpoint tested again."""

import csv
import dataclasses
import json
from pathlib import Path

import lightning as L
import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.predictions import read_predictions
from mer_lightning.evaluate import keeps_val_split, main
from mer_lightning.runs.build import build_datamodule
from mer_lightning.runs.config import recompose_run_config
from mer_lightning.runs.results import read_results
from tests.data_faults import copy_dataset, write_duplicates
from tests.helpers import train_run


@pytest.fixture(scope="module")
def trained_run(synthetic_root, tmp_path_factory) -> Path:
    """A run trained by the CLI on data with two test copies of train images."""
    tmp = tmp_path_factory.mktemp("evaluate")
    root = copy_dataset(synthetic_root, tmp / "Micro_Expressions")
    write_duplicates(root)
    return train_run(tmp / "run", "cnn1", root)


@pytest.mark.slow
def test_dedup_evaluation_leaves_out_the_leaked_test_images(trained_run, capsys):
    trained_bytes = (trained_run / "metrics.json").read_bytes()
    trained = json.loads(trained_bytes)

    assert main([str(trained_run), "data.dedup=true"]) == 0
    out = trained_run / "evaluate" / "data.dedup=true"
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["data"]["test_images"] == trained["data"]["test_images"] - 2
    assert evaluated["data"]["dedup_dropped"]["test_cross_split"] == 2
    assert evaluated["trained_test_acc"] == trained["test_acc"]
    support = sum(row["support"] for row in evaluated["per_class"].values())
    assert support == evaluated["data"]["test_images"]
    assert (out / "classification_report.txt").is_file()
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    _, predicted = read_predictions(out / "predictions.csv")
    assert set(predicted) == {"test"}  # dedup draws another val split: no val rows
    assert evaluated["val_acc"] is None
    assert len(predicted["test"].files) == evaluated["data"]["test_images"]
    assert predicted["test"].accuracy() == pytest.approx(evaluated["test_acc"])
    assert (trained_run / "metrics.json").read_bytes() == trained_bytes  # the run is untouched
    assert "evaluated acc" in capsys.readouterr().out
    with (trained_run / "evaluation_data.dedup=true.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["model"] == "cnn1" and int(row["test_images"]) == trained["data"]["test_images"] - 2
    assert row["val_acc"] == ""
    assert float(row["test_acc"]) == pytest.approx(evaluated["test_acc"])


@pytest.mark.slow
def test_without_overrides_it_reproduces_the_runs_test_accuracy(trained_run, monkeypatch):
    with monkeypatch.context() as once:  # predictions.csv comes from the val and test loops
        once.setattr(L.Trainer, "predict", lambda *a, **k: pytest.fail("scored a second time"))
        assert main([str(trained_run)]) == 0
    evaluated = json.loads((trained_run / "evaluate" / "default" / "metrics.json").read_text())
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert evaluated["test_acc"] == pytest.approx(trained["test_acc"])
    assert evaluated["val_acc"] == pytest.approx(trained["val_acc"])
    assert evaluated["metrics"]["test/f1_macro"] == pytest.approx(trained["test_f1_macro"])
    # Its predictions.csv stands in for the run's own (runs trained before they wrote one).
    _, own = read_predictions(trained_run / "predictions.csv")
    _, again = read_predictions(trained_run / "evaluate" / "default" / "predictions.csv")
    for split in ("val", "test"):
        assert again[split].files == own[split].files
        assert torch.allclose(again[split].probabilities, own[split].probabilities, atol=1e-4)

    # Again (e.g. after more jobs of a sweep finished): the earlier evaluation is kept as it is.
    first = trained_run / "evaluate" / "default" / "metrics.json"
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    monkeypatch.setattr(L.Trainer, "test", lambda *a, **k: pytest.fail("tested again"))
    assert main([str(trained_run)]) == 0
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    with (trained_run / "evaluation_default.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["test_acc"]) == pytest.approx(evaluated["test_acc"])
    assert float(row["val_acc"]) == pytest.approx(evaluated["val_acc"])


@pytest.mark.slow
@pytest.mark.parametrize("shift", [0, 2])
def test_test_time_augmented_retest_scores_the_runs_own_val_and_test(trained_run, tmp_path, shift):
    overrides = ["module.tta_hflip=true", f"module.tta_shift={shift}", "trainer.precision=32-true"]
    assert main([str(trained_run), *overrides]) == 0

    out = trained_run / "evaluate" / ",".join(overrides)
    _, predicted = read_predictions(out / "predictions.csv")
    assert set(predicted) == {"val", "test"}  # data.* untouched: val is still the run's own
    trained = json.loads((trained_run / "metrics.json").read_text())
    model = load_checkpoint(trained_run / trained["best_checkpoint"])
    augmented = dataclasses.replace(model, tta_hflip=True, tta_shift=shift)
    datamodule = build_datamodule(recompose_run_config(trained_run, [], tmp_path))
    _, own = read_predictions(trained_run / "predictions.csv")
    loaders = {"val": datamodule.val_dataloader(), "test": datamodule.test_dataloader()}
    for split, loader in loaders.items():
        expected = torch.cat([augmented.predict_proba(images) for images, _ in loader])
        assert predicted[split].files == own[split].files
        torch.testing.assert_close(predicted[split].probabilities, expected, atol=1e-5, rtol=0)
        assert not torch.allclose(expected, own[split].probabilities, atol=1e-3)
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["test_acc"] == pytest.approx(predicted["test"].accuracy())
    assert evaluated["val_acc"] == pytest.approx(predicted["val"].accuracy())


@pytest.mark.slow
def test_a_retest_told_to_skip_validation_scores_test_alone(trained_run):
    assert main([str(trained_run), "trainer.limit_val_batches=0"]) == 0
    out = trained_run / "evaluate" / "trainer.limit_val_batches=0"
    _, predicted = read_predictions(out / "predictions.csv")
    assert set(predicted) == {"test"}
    assert json.loads((out / "metrics.json").read_text())["val_acc"] is None


def test_a_dir_without_runs_is_refused_with_the_fix(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "has no metrics.json" in capsys.readouterr().out.replace("\n", " ")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "typo")])
    assert "typo is not a directory" in capsys.readouterr().out.replace("\n", " ")


@pytest.mark.parametrize(
    ("overrides", "keeps"),
    [
        ([], True),
        (["module.tta_hflip=true", "trainer.precision=32-true"], True),
        (["data.dedup=true"], False),
        (["module.tta_hflip=true", "+data.val_fraction=0.2"], False),
        (["data=micro_expressions"], False),
    ],
)
def test_only_overrides_that_leave_data_alone_keep_the_runs_val_split(overrides, keeps):
    assert keeps_val_split(overrides) is keeps


@pytest.mark.slow
def test_a_run_asked_for_retests_writes_them_for_its_comparison(synthetic_root, tmp_path):
    """`retests` (experiment=best sets one view and dedup) re-tests the finished run, so one
    command writes every figure of a results-table row."""
    root = copy_dataset(synthetic_root, tmp_path / "Micro_Expressions")
    write_duplicates(root)
    run_dir = train_run(
        tmp_path / "run", "cnn1", root, "retests=['module.tta_hflip=true','data.dedup=true']"
    )
    trained = read_results(run_dir / "metrics.json")
    for name in ("module.tta_hflip=true", "data.dedup=true"):
        retest = read_results(run_dir / "evaluate" / name / "metrics.json")
        assert retest.kind == "evaluate" and retest.trained_test_acc == trained.test_acc
    dedup = read_results(run_dir / "evaluate" / "data.dedup=true" / "metrics.json")
    assert dedup.data["test_images"] < trained.data["test_images"]
