"""`python -m mer_lightning.ensemble`: a sweep's finished runs tested as one soft-voting model."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from mer_lightning.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.config import recompose_run_config
from mer_lightning.ensemble import SoftVote, main
from mer_lightning.train import build_datamodule
from tests.helpers import CLASSES, fast_overrides, train_with_cli


def linear_member(seed: int, mean: float, std: float) -> LoadedModel:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, len(CLASSES))).eval()
    return LoadedModel(net, list(CLASSES), 4, (mean,) * 3, (std,) * 3, arch={})


def test_soft_vote_is_the_mean_of_each_members_own_probabilities():
    members = [linear_member(0, 0.5, 0.5), linear_member(1, 0.2, 0.3)]
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)

    voted = SoftVote(members).eval()(images).exp()

    expected = (members[0].predict_proba(images) + members[1].predict_proba(images)) / 2
    torch.testing.assert_close(voted, expected)
    torch.testing.assert_close(voted.sum(dim=1), torch.ones(5))


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
def test_ensemble_refuses_runs_trained_on_different_validation_splits(sweep, tmp_path, capsys):
    mixed = tmp_path / "sweep"
    for job in ("0_seed=1", "1_seed=2"):
        shutil.copytree(sweep / job, mixed / job)
    overrides = mixed / "1_seed=2" / ".hydra" / "overrides.yaml"
    OmegaConf.save([*OmegaConf.load(overrides), "data.split_seed=7"], overrides)

    with pytest.raises(SystemExit) as exit_info:
        main([str(mixed)])

    assert exit_info.value.code == 2
    message = " ".join(capsys.readouterr().out.split())
    assert "data.split_seed=7" in message and "data.split_seed=42" in message
    assert not (mixed / "ensemble" / "default" / "metrics.json").exists()


def test_ensemble_of_a_single_run_says_what_to_give(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")

    with pytest.raises(SystemExit) as exit_info:
        main([str(run)])

    assert exit_info.value.code == 2
    assert "an ensemble needs two or more" in " ".join(capsys.readouterr().out.split())
