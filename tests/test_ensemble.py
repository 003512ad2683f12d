"""`python -m mer_lightning.ensemble`: a sweep's finished runs tested as one soft-voting model."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mer_lightning.compare.__main__ import main as compare_main
from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.predictions import SplitPredictions, read_predictions
from mer_lightning.ensemble import main, soft_vote
from mer_lightning.evaluate import main as evaluate_main
from mer_lightning.runs.build import build_datamodule
from mer_lightning.runs.config import recompose_run_config
from tests.helpers import CLASSES, fast_overrides, train_with_cli


def test_soft_vote_is_the_mean_of_the_members_probabilities_image_by_image():
    files, labels = ["a.jpg", "b.jpg"], torch.tensor([0, 2])
    first = SplitPredictions(files, labels, torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.1, 0.4]]))
    second = SplitPredictions(files, labels, torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]))

    voted = soft_vote([first, second])

    expected = torch.tensor([[0.4, 0.5, 0.1], [0.3, 0.1, 0.6]])
    torch.testing.assert_close(voted.probabilities, expected)
    assert voted.files == files and voted.accuracy() == 0.5  # a.jpg flips to class 1


@pytest.fixture(scope="module")
def sweep(synthetic_root, tmp_path_factory) -> Path:
    """A two-seed multirun of the CLI on the synthetic dataset."""
    tmp = tmp_path_factory.mktemp("ensemble")
    sweep_dir = tmp / "sweep"
    train_with_cli(
        "-m",
        "seed=1,2",
        *fast_overrides("cnn1", synthetic_root),
        "trainer.max_epochs=2",
        "trainer.precision=32-true",  # as independent_test_accuracy computes
        f"hydra.sweep.dir={sweep_dir}",
        "callbacks.model_summary=null",
        cwd=tmp,
    )
    return sweep_dir


def independent_test_accuracy(sweep_dir: Path, scratch: Path) -> float:
    """Accuracy of the averaged probabilities of the runs' best checkpoints, computed here."""
    runs = sorted(p.parent for p in sweep_dir.glob("*/metrics.json"))
    models = [
        load_checkpoint(run / json.loads((run / "metrics.json").read_text())["best_checkpoint"])
        for run in runs
    ]
    datamodule = build_datamodule(recompose_run_config(runs[0], [], scratch))
    correct = total = 0
    for images, labels in datamodule.test_dataloader():
        mean = sum(model.predict_proba(images) for model in models) / len(models)
        correct += (mean.argmax(dim=1) == labels).sum().item()
        total += len(labels)
    return correct / total


@pytest.mark.slow
def test_ensemble_scores_the_averaged_probabilities_on_val_and_test(sweep, tmp_path, capsys):
    members = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert main([str(sweep)]) == 0

    out = sweep / "ensemble" / "default"
    summary = json.loads((out / "metrics.json").read_text())
    assert [m["run"] for m in summary["members"]] == ["0_seed=1", "1_seed=2"]
    for member in summary["members"]:
        assert member["val_acc"] == members[member["run"]]["val_acc"]
        assert member["test_acc"] == members[member["run"]]["test_acc"]
    assert summary["test_acc"] == pytest.approx(
        independent_test_accuracy(sweep, tmp_path), abs=1e-6
    )
    assert 0.0 <= summary["val_acc"] <= 1.0 and "val/acc" in summary["metrics"]
    support = sum(row["support"] for row in summary["per_class"].values())
    assert support == summary["data"]["test_images"] == 6 * len(CLASSES)
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ensemble | soft vote |" in (out / "ensemble.md").read_text()
    assert "Soft-voting ensemble of 2 runs" in capsys.readouterr().out

    before = (out / "metrics.json").read_bytes()
    assert main([str(sweep)]) == 0  # same runs: shown again, not rebuilt
    assert (out / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_a_folder_of_links_ensembles_runs_from_several_sweeps(sweep, tmp_path):
    picked = tmp_path / "picked"  # as if the jobs came from two sweeps: links, named freely
    picked.mkdir()
    (picked / "first_sweep_seed1").symlink_to(sweep / "0_seed=1")
    (picked / "second_sweep_seed2").symlink_to(sweep / "1_seed=2")

    assert main([str(picked)]) == 0

    summary = json.loads((picked / "ensemble" / "default" / "metrics.json").read_text())
    assert [m["run"] for m in summary["members"]] == ["first_sweep_seed1", "second_sweep_seed2"]
    assert summary["test_acc"] == pytest.approx(
        independent_test_accuracy(sweep, tmp_path / "scratch"), abs=1e-6
    )
    assert not (sweep / "0_seed=1" / "ensemble").exists()  # the runs' own dirs stay as they were


@pytest.mark.slow
def test_ensemble_refuses_to_replace_one_built_from_other_runs(sweep, tmp_path, capsys):
    grown = tmp_path / "sweep"
    shutil.copytree(sweep, grown, symlinks=True)
    if not (grown / "ensemble" / "default" / "metrics.json").is_file():
        assert main([str(grown)]) == 0
    shutil.copytree(grown / "1_seed=2", grown / "2_seed=3")  # a job that finished later
    before = (grown / "ensemble" / "default" / "metrics.json").read_bytes()

    with pytest.raises(SystemExit) as exit_info:
        main([str(grown)])

    assert exit_info.value.code == 2
    message = " ".join(capsys.readouterr().out.split())
    assert "holds the ensemble of 2 runs (0_seed=1, 1_seed=2)" in message
    assert "now has 3 finished, a different set (0_seed=1, 1_seed=2, 2_seed=3)" in message
    assert "default-old" in message
    assert (grown / "ensemble" / "default" / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_ensemble_refuses_runs_trained_on_different_validation_splits(
    sweep, synthetic_root, tmp_path, capsys
):
    mixed = tmp_path / "sweep"
    shutil.copytree(sweep / "0_seed=1", mixed / "0_seed=1")
    train_with_cli(
        *fast_overrides("cnn1", synthetic_root),
        "data.split_seed=7",
        f"hydra.run.dir={mixed / '1_split_seed_7'}",
        cwd=tmp_path,
    )

    with pytest.raises(SystemExit) as exit_info:
        main([str(mixed)])

    assert exit_info.value.code == 2
    message = " ".join(capsys.readouterr().out.split())
    assert "1_split_seed_7 predicted val on other images than" in message
    assert "data.split_seed" in message
    assert not (mixed / "ensemble" / "default" / "metrics.json").exists()


@pytest.mark.slow
def test_a_mirror_averaged_ensemble_is_scored_on_mirror_averaged_val(sweep, tmp_path):
    sweep = shutil.copytree(sweep, tmp_path / "sweep", ignore=shutil.ignore_patterns("ensemble"))
    overrides = ["module.tta_hflip=true", "trainer.precision=32-true"]
    with pytest.raises(SystemExit):  # not re-tested yet: the message names the command
        main([str(sweep), *overrides])
    assert evaluate_main([str(sweep), *overrides]) == 0

    assert main([str(sweep), *overrides]) == 0

    name = "module.tta_hflip=true,trainer.precision=32-true"
    summary = json.loads((sweep / "ensemble" / name / "metrics.json").read_text())
    for member in summary["members"]:
        _, retested = read_predictions(
            sweep / member["run"] / "evaluate" / name / "predictions.csv"
        )
        assert member["val_acc"] == retested["val"].accuracy()
        assert member["test_acc"] == retested["test"].accuracy()
    voted = soft_vote(
        [
            read_predictions(sweep / m["run"] / "evaluate" / name / "predictions.csv")[1]["val"]
            for m in summary["members"]
        ]
    )
    assert summary["val_acc"] == pytest.approx(voted.accuracy())


@pytest.mark.slow
def test_published_results_ensemble_without_checkpoints(sweep, tmp_path):
    """compare --publish copies each job's predictions.csv: the ensemble of a published sweep
    is rebuilt from docs/results alone, and equals the sweep's own."""
    built = tmp_path / "sweep"
    shutil.copytree(sweep, built, symlinks=True, ignore=shutil.ignore_patterns("ensemble"))
    published = tmp_path / "published"
    assert compare_main([str(built), "--publish", str(published)]) == 0
    assert not list(published.rglob("*.ckpt"))

    assert main([str(published)]) == 0
    assert main([str(built)]) == 0

    again = json.loads((published / "ensemble" / "default" / "metrics.json").read_text())
    original = json.loads((built / "ensemble" / "default" / "metrics.json").read_text())
    assert again["metrics"] == pytest.approx(original["metrics"])
    assert again["test_acc"] == pytest.approx(independent_test_accuracy(sweep, tmp_path / "s"))


@pytest.mark.slow
def test_runs_without_predictions_or_test_overrides_get_the_evaluate_command(
    sweep, tmp_path, capsys
):
    old = tmp_path / "sweep"
    shutil.copytree(sweep, old, symlinks=True, ignore=shutil.ignore_patterns("ensemble"))
    (old / "1_seed=2" / "predictions.csv").unlink()  # as trained before runs wrote one

    with pytest.raises(SystemExit):
        main([str(old)])
    message = " ".join(capsys.readouterr().out.split())
    assert f"python -m mer_lightning.evaluate {old / '1_seed=2'}" in message

    assert evaluate_main([str(old / "1_seed=2")]) == 0  # writes evaluate/default/predictions.csv
    assert main([str(old)]) == 0
    summary = json.loads((old / "ensemble" / "default" / "metrics.json").read_text())
    assert summary["members"][1]["predictions"] == ["1_seed=2/evaluate/default/predictions.csv"]

    with pytest.raises(SystemExit):
        main([str(old), "data.eval_batch_size=8"])
    message = " ".join(capsys.readouterr().out.split())
    assert f"python -m mer_lightning.evaluate {old} data.eval_batch_size=8" in message
    assert evaluate_main([str(old), "data.eval_batch_size=8"]) == 0
    assert main([str(old), "data.eval_batch_size=8"]) == 0
    tested = json.loads((old / "ensemble" / "data.eval_batch_size=8" / "metrics.json").read_text())
    assert tested["test_acc"] == pytest.approx(summary["test_acc"])  # same images, same models


def test_ensemble_of_a_single_run_says_what_to_give(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")

    with pytest.raises(SystemExit) as exit_info:
        main([str(run)])

    assert exit_info.value.code == 2
    assert "an ensemble needs two or more" in " ".join(capsys.readouterr().out.split())
