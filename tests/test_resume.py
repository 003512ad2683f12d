"""Resuming: ckpt_path=last, resume=true, a run and a sweep killed with SIGKILL mid-epoch."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mer_lightning.compare.jobs import read_jobs
from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.errors import UserError
from mer_lightning.train import run
from tests import resume_helpers
from tests.helpers import CLASSES, compose_config, fast_overrides

STEPS = 7  # steps per epoch: 91 training images (98 minus 7 held out) in batches of 13
EVERY_2_STEPS = [
    "data.batch_size=13",
    "callbacks.last_checkpoint.every_n_train_steps=2",
    "callbacks.last_checkpoint.train_time_interval=null",
    "trainer.limit_predict_batches=1",
]
TEST_CONF = Path(__file__).parent / "conf"


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def adam_steps(checkpoint: dict) -> set[int]:
    """Adam's per-parameter step counters (one value when every parameter stepped together)."""
    return {int(state["step"]) for state in checkpoint["optimizer_states"][0]["state"].values()}


def test_ckpt_path_last_continues_a_run_and_resume_skips_a_finished_one(
    synthetic_root, tmp_path, monkeypatch
):
    constant_lr = [*EVERY_2_STEPS, "module/scheduler=none"]  # one-cycle ends with its first run
    first = run(compose_config(fast_overrides("cnn1", synthetic_root, *constant_lr), tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert first.epochs == 1 and adam_steps(load(last)) == {STEPS}

    more = fast_overrides("cnn1", synthetic_root, *constant_lr, "trainer.max_epochs=2")
    second = run(compose_config([*more, "ckpt_path=last"], tmp_path))
    assert second.resumed_from == str(last)
    assert second.epochs == 2 and [row["epoch"] for row in second.history] == [0.0, 1.0]
    assert adam_steps(load(last)) == {2 * STEPS} and load(last)["global_step"] == 2 * STEPS
    assert second.fit_seconds > first.fit_seconds  # the Timer went on from its state
    assert second.train_images_seen == 2 * first.train_images_seen

    stored = (tmp_path / "metrics.json").read_text()
    monkeypatch.setattr(L.Trainer, "fit", lambda *a, **k: pytest.fail("trained again"))
    third = run(compose_config([*more, "resume=true"], tmp_path))
    assert (
        third.to_dict() == json.loads(stored) and (tmp_path / "metrics.json").read_text() == stored
    )

    # A finished run of another model or seed in the same dir is not taken as this one's.
    for other in (fast_overrides("cnn2", synthetic_root), [*more, "seed=7"]):
        with pytest.raises(UserError) as error:
            run(compose_config([*other, "resume=true"], tmp_path))
        this_run = "model=cnn2 seed=42" if "model=cnn2" in other else "model=cnn1 seed=7"
        assert "holds a finished run of model=cnn1 seed=42" in str(error.value)
        assert f"not of this run's {this_run}" in str(error.value) and "hydra.run.dir" in str(
            error.value
        )
    assert (tmp_path / "metrics.json").read_text() == stored


def test_continuing_a_one_cycle_run_for_more_epochs_stops_before_training(synthetic_root, tmp_path):
    """One-cycle spans the epochs a run started with: continuing it for more stops with one
    line naming trainer.max_epochs, not with torch's error where the old schedule ends."""
    one_cycle = ["module/scheduler=one_cycle", "data.batch_size=13"]
    run(compose_config(fast_overrides("cnn1", synthetic_root, *one_cycle), tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    more = fast_overrides("cnn1", synthetic_root, *one_cycle, "trainer.max_epochs=2")
    with pytest.raises(UserError) as error:
        run(compose_config([*more, "ckpt_path=last"], tmp_path))
    assert f"built for {STEPS} optimizer steps" in str(error.value)
    assert f"(trainer.max_epochs=2) needs {2 * STEPS}" in str(error.value)
    assert adam_steps(load(last)) == {STEPS}  # the checkpoint is left as it was


def test_continuing_a_constant_lr_run_under_a_schedule_stops_before_training(
    synthetic_root, tmp_path
):
    """A run trained without a schedule (e.g. before one-cycle became the default) continued
    under one stops with one line naming module/scheduler=none, not torch's KeyError."""
    constant = fast_overrides("cnn1", synthetic_root, "module/scheduler=none")
    run(compose_config(constant, tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    steps = adam_steps(load(last))
    scheduled = fast_overrides("cnn1", synthetic_root, "trainer.max_epochs=2", "ckpt_path=last")
    with pytest.raises(UserError, match="trained without an LR schedule .* OneCycleLR"):
        run(compose_config(scheduled, tmp_path))
    assert adam_steps(load(last)) == steps  # the checkpoint is left as it was
    continued = run(compose_config([*constant, "trainer.max_epochs=2", "ckpt_path=last"], tmp_path))
    assert continued.epochs == 2


@pytest.mark.parametrize(
    "best",
    [
        # monitor epoch, lowest first: the best checkpoint is epoch 0 and never written again
        ["monitor.metric=epoch", "monitor.mode=min"],
        ["callbacks.model_checkpoint=null"],  # no best checkpoint at all
    ],
    ids=["best-is-first-epoch", "no-best-checkpoint"],
)
def test_last_ckpt_holds_the_end_of_training_whatever_the_best_epoch(
    best, synthetic_root, tmp_path
):
    epochs = 3
    overrides = [
        "data.batch_size=13",
        f"trainer.max_epochs={epochs}",
        # mid-epoch saves (a real run's come every 5 minutes); these fall on each epoch's
        # last step, before its validation
        "callbacks.last_checkpoint.every_n_train_steps=7",
        "callbacks.last_checkpoint.train_time_interval=null",
        *best,
    ]
    summary = run(compose_config(fast_overrides("cnn1", synthetic_root, *overrides), tmp_path))
    assert summary.epochs == epochs
    final = load(tmp_path / "checkpoints" / "last.ckpt")
    # The state after the last epoch's validation, as fine-tuning or a longer run would want.
    assert final["global_step"] == epochs * STEPS and adam_steps(final) == {epochs * STEPS}
    assert final["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == epochs
    assert len(final["callbacks"]["EpochHistory"]["epochs"]) == epochs
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(
        ["last.ckpt", *([] if "callbacks.model_checkpoint=null" in best else ["epoch000.ckpt"])]
    )


def test_a_new_run_refuses_a_dir_that_holds_another_run(synthetic_root, tmp_path, monkeypatch):
    run(compose_config(fast_overrides("cnn1", synthetic_root), tmp_path))
    kept = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    # The refusal comes at once, not after reading the dataset (half a minute on the real one).
    read = lambda *a, **k: pytest.fail("read the dataset before refusing")  # noqa: E731
    monkeypatch.setattr(MicroExpressionDataModule, "setup", read)
    with pytest.raises(UserError, match=r"already holds a run .*metrics\.json.*resume=true"):
        run(compose_config(fast_overrides("cnn1", synthetic_root, "seed=7"), tmp_path))
    assert {path: path.read_bytes() for path in kept} == kept  # nothing rewritten


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_where_it_stopped(synthetic_root, tmp_path):
    run_dir, epochs, pace = tmp_path / "run", 3, 0.5
    args = [
        *fast_overrides("cnn1", synthetic_root, *EVERY_2_STEPS, f"trainer.max_epochs={epochs}"),
        f"hydra.run.dir={run_dir}",
    ]
    # Every event reaches the disk at once, as minutes of a long run's events do before a kill.
    unbuffered = "+logger.tensorboard.max_queue=1"
    process = resume_helpers.start(
        [*args, unbuffered, resume_helpers.SLOW % pace], tmp_path / "killed.log"
    )
    resume_helpers.kill_at_step(process, run_dir, 2 * STEPS + 3, tmp_path / "killed.log")

    killed = load(run_dir / "checkpoints" / "last.ckpt")
    saved_step = killed["global_step"]
    assert killed["epoch"] == 2 and 2 * STEPS < saved_step < 3 * STEPS  # inside the 3rd epoch
    assert adam_steps(killed) == {saved_step}
    saved_seconds = killed["callbacks"]["Timer"]["time_elapsed"]["train"]
    assert saved_seconds >= pace * saved_step  # SlowSteps slept that long before the save
    assert not (run_dir / "metrics.json").exists()

    # Resume without the pacing: only the steps after the checkpoint are left to run.
    resume_helpers.run([*args, "resume=true"], tmp_path / "resumed.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    final = load(run_dir / "checkpoints" / "last.ckpt")
    assert metrics["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert metrics["epochs"] == epochs
    assert [row["epoch"] for row in metrics["history"]] == [0.0, 1.0, 2.0]
    assert final["global_step"] == epochs * STEPS and adam_steps(final) == {epochs * STEPS}
    assert metrics["fit_seconds"] >= saved_seconds  # time before the kill is included
    assert metrics["train_images_seen"] == epochs * 91
    # TensorBoard drops what the killed run logged after its checkpoint: each curve runs once.
    curves = EventAccumulator(str(run_dir / "tensorboard"))
    curves.Reload()
    losses = [event.step for event in curves.Scalars("train/loss_step")]
    assert losses == list(range(epochs * STEPS))  # every step once, none lost
    val_steps = [event.step for event in curves.Scalars("val/acc")]
    assert val_steps == sorted(set(val_steps))


@pytest.mark.slow
def test_a_killed_sweep_skips_finished_jobs_and_resumes_the_rest(synthetic_root, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "experiment=fast_resume",
        "seed=1,2",
        f"data.root={synthetic_root}",
        f"hydra.sweep.dir={sweep}",
        f"hydra.searchpath=[file://{TEST_CONF}]",
    ]
    process = resume_helpers.start(args, tmp_path / "killed.log")
    # The basic launcher runs job 0, then job 1; kill the sweep inside job 1's second epoch.
    # Job dirs are named <num>_<overrides>; resume=true must not change those names.
    resume_helpers.kill_at_step(process, sweep, STEPS + 3, tmp_path / "killed.log", job="1_*")
    job0, job1 = next(sweep.glob("0_*seed=1")), next(sweep.glob("1_*seed=2"))
    assert (job0 / "metrics.json").is_file() and not (job1 / "metrics.json").exists()
    done = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in job0.rglob("*") if p.is_file()}
    done = {p: v for p, v in done.items() if p.parent.name != ".hydra" and p.suffix != ".log"}
    killed = load(job1 / "checkpoints" / "last.ckpt")
    assert STEPS < killed["global_step"] < 2 * STEPS
    # The report of the stopped sweep says how far the unfinished job got.
    best = max(epoch["val/acc"] for epoch in killed["callbacks"]["EpochHistory"]["epochs"])
    why = next(job.error for job in read_jobs(sweep) if job.dir == job1)
    assert why.startswith(
        f"no metrics.json yet; last.ckpt: 1 of 2 epochs done, best val/acc {best:.4f}, "
    )
    assert "resume=true" in why

    result = resume_helpers.run([*args, "resume=true"], tmp_path / "resumed.log")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [job0.name, job1.name]
    for path, (content, mtime) in done.items():  # job 0 was not run again
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, path
    assert "already finished" in result.stdout + result.stderr
    metrics = json.loads((job1 / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(job1 / "checkpoints" / "last.ckpt")
    assert metrics["epochs"] == 2 and metrics["seed"] == 2
    assert adam_steps(load(job1 / "checkpoints" / "last.ckpt")) == {2 * STEPS}


CNN1_ARCH = {
    "_target_": "mer_lightning.core.models.cnn.BlockCNN",
    "in_channels": 3,
    "input_size": 32,
    "channels": [8, 16, 16],
    "convs_per_block": 3,
    "hidden": [32, 32],
    "dropout": 0.0,
    "num_classes": 7,
}


class Payload:
    """Unpickling this would create a file: weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def fake_checkpoint(path: Path, arch: dict, class_names: list[str], extra=None) -> Path:
    """What check_matches reads of a training checkpoint: its hyper_parameters."""
    hparams = {"arch": arch, "class_names": class_names, "image_size": 32}
    torch.save({"hyper_parameters": hparams, "state_dict": {}, "extra": extra}, path)
    return path


@pytest.mark.parametrize(
    ("arch", "classes", "expected"),
    [
        (
            {**CNN1_ARCH, "_target_": "mer_lightning.core.models.resnet.ResNet18Classifier"},
            CLASSES,
            "it was trained as ResNet18Classifier(",
        ),
        ({**CNN1_ARCH, "channels": [8, 16, 32]}, CLASSES, "channels=[8, 16, 32]"),
        (CNN1_ARCH, [*CLASSES[:-1], "contempt"], "'contempt'"),
    ],
    ids=["other model", "other widths", "other classes"],
)
def test_resuming_from_a_mismatching_checkpoint_names_both(
    arch, classes, expected, synthetic_root, tmp_path, monkeypatch
):
    ckpt = fake_checkpoint(tmp_path / "other.ckpt", arch, list(classes))
    monkeypatch.setattr(L.Trainer, "fit", lambda *a, **k: pytest.fail("fit must not start"))
    overrides = fast_overrides("cnn1", synthetic_root, f"ckpt_path={ckpt}")
    with pytest.raises(UserError) as error:
        run(compose_config(overrides, tmp_path / "run"))
    message = str(error.value)
    assert str(ckpt) in message and expected in message
    if list(classes) == list(CLASSES):  # the run's own architecture is named too
        assert "this run builds BlockCNN(in_channels=3, input_size=32, channels=[8, 16, 16]" in (
            message
        )
    else:
        assert f"this run's data has {list(CLASSES)}" in message


def test_a_checkpoint_with_pickled_code_is_refused_without_running_it(synthetic_root, tmp_path):
    marker = tmp_path / "code_ran"
    ckpt = fake_checkpoint(tmp_path / "evil.ckpt", CNN1_ARCH, list(CLASSES), Payload(marker))
    overrides = fast_overrides("cnn1", synthetic_root, f"ckpt_path={ckpt}")
    with pytest.raises(UserError, match="weights_only loading refuses"):
        run(compose_config(overrides, tmp_path / "run"))
    assert not marker.exists()


def test_prediction_loading_names_weights_that_do_not_fit_their_net(synthetic_root, tmp_path):
    ckpt = tmp_path / "mixed.ckpt"
    hparams = {"arch": CNN1_ARCH, "class_names": list(CLASSES), "image_size": 32}
    hparams |= {"mean": [0.5] * 3, "std": [0.5] * 3}
    torch.save({"hyper_parameters": hparams, "state_dict": {"net.bogus": torch.zeros(1)}}, ckpt)
    with pytest.raises(UserError, match=r"its weights are not those of the net it names, BlockCNN"):
        load_checkpoint(ckpt)
    torch.save({"hyper_parameters": {**hparams, "class_names": ["a", "b"]}, "state_dict": {}}, ckpt)
    with pytest.raises(UserError, match=r"has 7 outputs but it names 2 classes"):
        load_checkpoint(ckpt)
