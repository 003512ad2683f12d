"""End to end: each paper model fits and tests through the Hydra config, writing every artifact."""

import csv
import json
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.core.predictions import read_predictions
from mer_lightning.evaluate import main as evaluate_main
from mer_lightning.runs.build import build
from mer_lightning.runs.precision import resolve_precision
from mer_lightning.train import run
from tests.helpers import (
    CLASSES,
    FAST_MODEL,
    FAST_RUN,
    compose_config,
    fast_overrides,
    train_with_cli,
)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn1", "cnn2", "resnet18"])
def test_fit_then_test_writes_every_artifact(model, synthetic_root, tmp_path):
    cfg = compose_config(fast_overrides(model, synthetic_root), tmp_path)
    summary = run(cfg)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(summary.to_dict()))
    assert metrics["model"] == model
    assert metrics["classes"] == list(CLASSES)
    for key in ("train_acc", "val_acc", "test_acc", "test_f1_macro"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["fit_seconds"] > 0 and metrics["train_images_per_second"] > 0
    assert metrics["parameters"] > 0 and metrics["epochs"] == 1 and metrics["seed"] == 42
    assert metrics["precision"] == resolve_precision("auto", "cpu")  # what auto ran as
    assert metrics["train_images_seen"] == 7 * 13  # 14 per class minus the 1 held out
    assert sum(row["support"] for row in metrics["per_class"].values()) == 7 * 6
    assert set(metrics["per_class"]["fear"]) == {"precision", "recall", "f1", "support"}
    assert "test/f1/fear" in metrics["metrics"] and "val/acc" in metrics["metrics"]

    names, predicted = read_predictions(tmp_path / "predictions.csv")
    assert names == list(CLASSES) and set(predicted) == {"val", "test"}
    assert len(predicted["val"].files) == metrics["data"]["val_images"] == 7
    assert len(predicted["test"].files) == metrics["data"]["test_images"] == 7 * 6
    assert predicted["test"].files[0] == "test/anger/anger1.jpg"  # relative to data.root
    assert torch.allclose(predicted["test"].probabilities.sum(dim=1), torch.ones(42), atol=1e-4)
    assert predicted["test"].accuracy() == pytest.approx(metrics["test_acc"])
    assert predicted["val"].accuracy() == pytest.approx(metrics["val_acc"])

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
    assert "test/confusion_matrix" in events.Tags()["images"]
    assert events.PluginTagToContent("hparams")  # the config, with the headline test metrics


@pytest.mark.slow
def test_cnn1_learns_the_synthetic_classes_well_above_chance(synthetic_root, tmp_path):
    overrides = fast_overrides("cnn1", synthetic_root, "trainer.max_epochs=8")
    summary = run(compose_config(overrides, tmp_path))
    assert summary.test_acc >= 0.6, summary.metrics  # chance is 1/7
    assert summary.train_acc >= 0.6
    assert len(summary.history) == 8
    assert summary.history[-1]["train/loss_epoch"] < summary.history[0]["train/loss_epoch"]


@pytest.mark.slow
def test_cli_run_writes_into_its_hydra_run_dir(synthetic_root, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mer_lightning",
            *fast_overrides("cnn1", synthetic_root),
            "print_config=true",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "config" in result.stdout
        and "_target_: mer_lightning.core.models.cnn.BlockCNN" in result.stdout
    )
    assert (run_dir / "metrics.json").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()


def test_cli_missing_dataset_prints_the_fix_without_traceback(tmp_path):
    missing = tmp_path / "absent"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mer_lightning",
            f"data.root={missing}",
            "print_config=false",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert f"data.root={missing} does not exist" in " ".join(output.split())
    assert "Traceback" not in output


@pytest.mark.slow
def test_short_epoch_on_the_real_dataset(real_root, tmp_path):
    overrides = [
        "model=cnn1",
        f"data.root={real_root}",
        *FAST_RUN,
        *FAST_MODEL["cnn1"],
        "data.image_size=80",
        "trainer.limit_train_batches=10",
        "trainer.limit_val_batches=2",
        "trainer.limit_predict_batches=2",
    ]
    summary = run(compose_config(overrides, tmp_path))
    assert summary.classes == list(CLASSES)
    assert summary.train_images_seen == 10 * 16
    assert sum(row["support"] for row in summary.per_class.values()) == 1860
    assert summary.per_class["fear"]["support"] == 120
    _, predicted = read_predictions(tmp_path / "predictions.csv")  # what the metrics counted
    assert [len(predicted[split].files) for split in ("val", "test")] == [2 * 64, 1860]
    assert predicted["test"].files[:2] == ["test/anger/anger1.jpg", "test/anger/anger10.jpg"]


@pytest.mark.slow
def test_balanced_class_weights_and_a_scheduler_partial(synthetic_root, tmp_path):
    scheduler = "{_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1,gamma:0.5}"
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        "module.class_weights=balanced",
        "module/scheduler=none",
        f"module.scheduler={scheduler}",
        "trainer.max_epochs=2",
    )
    cfg = compose_config(overrides, tmp_path)
    datamodule, module, trainer = build(cfg)
    assert module.loss.weight.tolist() == pytest.approx([1.0] * 7)  # the synthetic set is balanced
    trainer.fit(module, datamodule=datamodule)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)


@pytest.mark.slow
def test_a_per_step_one_cycle_schedule_spans_the_whole_run(synthetic_root, tmp_path):
    """module.scheduler_interval=step: one-cycle is built with the run's optimizer steps, warms
    up to its peak and anneals by the last step (OneCycleLR fails if stepped past them)."""
    scheduler = "{_target_:torch.optim.lr_scheduler.OneCycleLR,_partial_:true,max_lr:0.01}"
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        f"module.scheduler={scheduler}",
        "module.scheduler_interval=step",
        "trainer.max_epochs=2",
    )
    cfg = compose_config(overrides, tmp_path)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    schedule = trainer.lr_scheduler_configs[0]
    assert schedule.interval == "step"
    assert schedule.scheduler.total_steps == trainer.global_step > 2
    assert trainer.optimizers[0].param_groups[0]["lr"] < 0.01 / 10  # annealed from the peak


def test_a_per_step_scheduler_without_total_steps_names_the_key(synthetic_root, tmp_path):
    scheduler = "{_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1}"
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        "module/scheduler=none",
        f"module.scheduler={scheduler}",
        "module.scheduler_interval=step",
    )
    datamodule, module, trainer = build(compose_config(overrides, tmp_path))
    with pytest.raises(UserError, match="module.scheduler_interval=step builds module.scheduler"):
        trainer.fit(module, datamodule=datamodule)


def test_an_unknown_scheduler_interval_names_the_key(synthetic_root, tmp_path):
    cfg = compose_config(
        fast_overrides("cnn1", synthetic_root, "module.scheduler_interval=batch"), tmp_path
    )
    with pytest.raises(UserError, match="module.scheduler_interval='batch' must be one of"):
        build(cfg)


def test_class_weights_list_must_match_the_classes(synthetic_root, tmp_path):
    cfg = compose_config(
        fast_overrides("cnn1", synthetic_root, "module.class_weights=[1,2]"), tmp_path
    )
    with pytest.raises(UserError, match="module.class_weights has 2 values"):
        build(cfg)


@pytest.mark.slow
def test_weight_averaging_is_what_the_run_validates_keeps_and_tests(synthetic_root, tmp_path):
    """callbacks.weight_averaging: the best checkpoint holds the EMA weights, and the run's
    own val and test figures are those weights' (as a later re-test of the checkpoint gives)."""
    run_dir = tmp_path / "run"
    ema = "{_target_:lightning.pytorch.callbacks.EMAWeightAveraging,decay:0.5}"
    train_with_cli(
        *fast_overrides("cnn1", synthetic_root),
        "trainer.max_epochs=2",
        f"callbacks.weight_averaging={ema}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    trained = json.loads((run_dir / "metrics.json").read_text())
    checkpoint = torch.load(run_dir / trained["best_checkpoint"], weights_only=True)
    averaged, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert any(not torch.equal(averaged[key], raw[key]) for key in raw)
    predictor = load_checkpoint(run_dir / trained["best_checkpoint"]).net  # predict's weights
    for key, value in predictor.state_dict().items():
        assert value.equal(averaged[f"net.{key}"])

    assert evaluate_main([str(run_dir)]) == 0
    _, own = read_predictions(run_dir / "predictions.csv")
    _, again = read_predictions(run_dir / "evaluate" / "default" / "predictions.csv")
    for split in ("val", "test"):
        assert torch.allclose(own[split].probabilities, again[split].probabilities, atol=1e-4)
    assert own["val"].accuracy() == pytest.approx(trained["val_acc"])
    assert own["test"].accuracy() == pytest.approx(trained["test_acc"])
