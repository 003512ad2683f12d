"""data.val_fraction=0: a refit on every training image keeps and tests its final epoch."""

import json

import pytest
import torch

from mer_lightning.core.errors import UserError
from mer_lightning.core.predictions import read_predictions
from mer_lightning.ensemble import main as ensemble_main
from mer_lightning.evaluate import main as evaluate_main
from mer_lightning.recipes.distill import Distillation
from mer_lightning.runs.build import build, find_callback
from tests.helpers import compose_config, fast_overrides, train_run

TRAIN_IMAGES = 7 * 14  # every image of the synthetic train/


@pytest.fixture(scope="module")
def refit_run(synthetic_root, tmp_path_factory):
    """A two-epoch cnn1 refit on the synthetic dataset, trained by the CLI."""
    run_dir = tmp_path_factory.mktemp("refit") / "run"
    return train_run(run_dir, "cnn1", synthetic_root, "data.val_fraction=0", "trainer.max_epochs=2")


@pytest.mark.slow
def test_a_refit_trains_on_every_image_and_tests_its_final_epoch(refit_run):
    metrics = json.loads((refit_run / "metrics.json").read_text())
    assert metrics["data"]["train_images"] == TRAIN_IMAGES and metrics["data"]["val_images"] == 0
    assert metrics["train_images_seen"] == 2 * TRAIN_IMAGES
    assert metrics["best_checkpoint"] == "checkpoints/epoch001.ckpt"  # the final of two epochs
    assert metrics["val_acc"] is None
    assert not any(key.startswith("val/") for key in metrics["metrics"])
    assert 0.0 <= metrics["test_acc"] <= 1.0 and "test/f1/fear" in metrics["metrics"]

    kept = torch.load(refit_run / metrics["best_checkpoint"], weights_only=True)
    final = torch.load(refit_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert kept["epoch"] == 1  # the weights of the final epoch, as last.ckpt holds them
    for key, value in final["state_dict"].items():
        torch.testing.assert_close(kept["state_dict"][key], value)

    _, predicted = read_predictions(refit_run / "predictions.csv")
    assert set(predicted) == {"test"}  # no val rows: a teacher's rows name its held-out faces
    assert predicted["test"].accuracy() == pytest.approx(metrics["test_acc"])


def test_a_refit_smoke_run_with_fast_dev_run_tests_without_val(synthetic_root, tmp_path):
    """+trainer.fast_dev_run=true, the usual check of a command before a long run, turns
    validation back on; a refit has no val split to run it on, and must not crash over it."""
    run_dir = train_run(
        tmp_path / "run",
        "cnn1",
        synthetic_root,
        "data.val_fraction=0",
        "+trainer.fast_dev_run=true",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_acc"] is None and 0.0 <= metrics["test_acc"] <= 1.0


@pytest.mark.slow
def test_a_refit_is_tested_again_without_val(refit_run):
    assert evaluate_main([str(refit_run), "module.tta_hflip=true"]) == 0
    out = refit_run / "evaluate" / "module.tta_hflip=true"
    retest = json.loads((out / "metrics.json").read_text())
    assert retest["checkpoint"] == "checkpoints/epoch001.ckpt" and retest["val_acc"] is None
    assert 0.0 <= retest["test_acc"] <= 1.0
    assert set(read_predictions(out / "predictions.csv")[1]) == {"test"}


@pytest.mark.slow
def test_a_refit_learns_from_a_validated_teacher_but_does_not_teach_a_validated_student(
    synthetic_root, refit_run, tmp_path
):
    teacher_run = train_run(tmp_path / "teacher", "cnn1", synthetic_root)
    (teacher,) = (teacher_run / "checkpoints").glob("epoch*.ckpt")
    student = fast_overrides(
        "cnn2", synthetic_root, f"callbacks.distill.teachers=[{teacher}]", "data.val_fraction=0"
    )
    datamodule, module, trainer = build(compose_config(student, tmp_path / "student"))
    trainer.fit(module, datamodule=datamodule)  # no validation faces to leak
    assert len(find_callback(trainer, Distillation).teachers) == 1

    refit_teacher = refit_run / "checkpoints" / "epoch001.ckpt"
    validated = fast_overrides(
        "cnn2", synthetic_root, f"callbacks.distill.teachers=[{refit_teacher}]"
    )
    datamodule, module, trainer = build(compose_config(validated, tmp_path / "validated"))
    with pytest.raises(UserError, match=r"validated on no images \(val_fraction=0\)"):
        trainer.fit(module, datamodule=datamodule)


@pytest.mark.slow
def test_refits_are_not_ensembled_since_an_ensemble_is_judged_on_val(refit_run, tmp_path, capsys):
    picked = tmp_path / "picked"
    picked.mkdir()
    for name in ("seed1", "seed2"):
        (picked / name).symlink_to(refit_run)

    with pytest.raises(SystemExit) as exit_info:
        ensemble_main([str(picked)])

    assert exit_info.value.code == 2
    message = " ".join(capsys.readouterr().out.split())
    assert "is a refit without validation (data.val_fraction=0)" in message
    assert not (picked / "ensemble").exists()
