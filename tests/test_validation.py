"""Bad config values fail before any data is read, with a message naming the key."""

import os
import subprocess
import sys

import pytest

from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.errors import UserError
from mer_lightning.runs.validate import problems
from mer_lightning.train import run
from tests.helpers import REPO, compose_config, fast_overrides

BAD_VALUES = [
    ("module.optimizer.lr=-1", "module.optimizer.lr=-1 must be a number > 0"),
    ("module.optimizer.lr=0", "module.optimizer.lr=0 must be a number > 0"),
    ("module.optimizer.lr=abc", "module.optimizer.lr=abc must be a number > 0"),
    ("data.val_fraction=-0.1", "data.val_fraction=-0.1 must be a number in [0, 1)"),
    ("data.val_fraction=1", "data.val_fraction=1 must be a number in [0, 1)"),
    ("data.batch_size=0", "data.batch_size=0 must be an integer >= 1"),
    ("data.eval_batch_size=-4", "data.eval_batch_size=-4 must be an integer >= 1"),
    ("data.on_bad_file=ignore", "data.on_bad_file=ignore must be one of ['skip', 'raise']"),
    ("module.label_smoothing=1", "module.label_smoothing=1 must be a number in [0, 1)"),
    ("data.mixup_alpha=-0.2", "data.mixup_alpha=-0.2 must be a number >= 0 (0 = off)"),
    ("data.cutmix_alpha=-1", "data.cutmix_alpha=-1 must be a number >= 0 (0 = off)"),
    (
        "callbacks.distill.teachers=run/best.ckpt",
        "callbacks.distill.teachers=run/best.ckpt must be a list of checkpoint paths",
    ),
    ("callbacks.distill.temperature=0", "callbacks.distill.temperature=0 must be a number > 0"),
    ("callbacks.distill.weight=1.5", "callbacks.distill.weight=1.5 must be a number in [0, 1]"),
    (
        "callbacks.distill.mirror=sometimes",
        "callbacks.distill.mirror=sometimes must be true or false",
    ),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1"),
    ("monitor.mode=maximum", "monitor.mode=maximum must be min or max"),
    ("resume=maybe", "resume=maybe must be true or false"),
    (
        "module.class_weights=balance",
        "module.class_weights=balance must be null, one of ['none', 'sqrt', 'balanced']",
    ),
]


@pytest.fixture
def no_data_reading(monkeypatch):
    """Fail the test if anything reaches the datamodule."""

    def refuse(*args, **kwargs):
        raise AssertionError("validation must fail before the data is touched")

    monkeypatch.setattr(MicroExpressionDataModule, "prepare_data", refuse)
    monkeypatch.setattr(MicroExpressionDataModule, "setup", refuse)


def test_the_default_config_is_valid(synthetic_root, tmp_path):
    assert problems(compose_config(fast_overrides("cnn1", synthetic_root), tmp_path)) == []


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_value_fails_before_training_naming_the_key(
    override, message, synthetic_root, tmp_path, no_data_reading
):
    cfg = compose_config(fast_overrides("cnn1", synthetic_root, override), tmp_path)
    with pytest.raises(UserError) as error:
        run(cfg)
    assert message in str(error.value)
    assert not (tmp_path / "checkpoints").exists()


def test_a_data_root_that_is_a_file_is_named(synthetic_root, tmp_path, no_data_reading):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a dataset")
    cfg = compose_config(fast_overrides("cnn1", notes), tmp_path / "run")
    with pytest.raises(UserError, match=f"data.root={notes} is a file but not a zip"):
        run(cfg)


def test_every_problem_is_listed_at_once(synthetic_root, tmp_path):
    bad = ["data.batch_size=0", "module.optimizer.lr=-1"]
    overrides = fast_overrides("cnn1", synthetic_root, *bad)
    found = problems(compose_config(overrides, tmp_path))
    assert found == [
        "module.optimizer.lr=-1 must be a number > 0, e.g. 1e-3",
        "data.batch_size=0 must be an integer >= 1",
    ]


def test_checkpoint_choices_are_checked(synthetic_root, tmp_path):
    missing = tmp_path / "gone.ckpt"
    cfg = compose_config(fast_overrides("cnn1", synthetic_root, f"ckpt_path={missing}"), tmp_path)
    assert problems(cfg)[0].startswith(f"ckpt_path={missing} is not a file")
    both = compose_config(
        fast_overrides("cnn1", synthetic_root, "resume=true", "ckpt_path=last"), tmp_path
    )
    assert "set only one" in problems(both)[0]
    steps_and_time = compose_config(
        fast_overrides("cnn1", synthetic_root, "callbacks.last_checkpoint.every_n_train_steps=5"),
        tmp_path,
    )
    assert "callbacks.last_checkpoint.train_time_interval=null" in problems(steps_and_time)[0]
    never = compose_config(
        fast_overrides(
            "cnn1", synthetic_root, "callbacks.last_checkpoint.train_time_interval=null"
        ),
        tmp_path,
    )
    assert "callbacks.last_checkpoint=null" in problems(never)[0]
    # Early stopping on val/acc cannot work in a refit, which has no val split.
    stopping = compose_config(
        fast_overrides(
            "cnn1",
            synthetic_root,
            "data.val_fraction=0",
            "+callbacks.early_stopping={_target_: lightning.pytorch.callbacks.EarlyStopping,"
            " monitor: val/acc, mode: max}",
        ),
        tmp_path,
    )
    assert problems(stopping) == [
        "callbacks.early_stopping watches val/acc, which data.val_fraction=0 does not produce: "
        "add callbacks.early_stopping=null, or hold out validation images "
        "(e.g. data.val_fraction=0.1)"
    ]
    # Dropping the mid-epoch saves is fine: last.ckpt still comes after every epoch.
    dropped = compose_config(
        fast_overrides("cnn1", synthetic_root, "callbacks.last_checkpoint=null"), tmp_path
    )
    assert problems(dropped) == []


def test_cli_unknown_model_lists_the_models_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning", "model=vgg", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Could not find 'model/vgg'" in output
    assert "Available options in 'model'" in output
    for model in ("cnn1", "cnn2", "resnet18"):
        assert model in output
    assert "Traceback" not in output and len(output.splitlines()) < 20


def cli_error(*overrides: str) -> str:
    """What `python -m mer_lightning overrides...` prints; it must exit with status 2."""
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning", "print_config=false", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_cli_bad_value_exits_2_with_the_key_and_no_traceback(synthetic_root, tmp_path):
    output = cli_error(
        f"data.root={synthetic_root}", "module.optimizer.lr=-1", f"hydra.run.dir={tmp_path}"
    )
    assert "module.optimizer.lr=-1 must be a number > 0" in output
    assert "Traceback" not in output


def test_cli_error_shows_bracketed_values_as_typed(synthetic_root, tmp_path):
    output = cli_error(
        f"data.root={synthetic_root}",
        "callbacks.distill.teachers=runs/a.ckpt",
        f"hydra.run.dir={tmp_path}",
    )
    # The example list survives the terminal's markup: rich would drop "[...]" as a tag.
    assert "e.g. '[runs/a/checkpoints/epoch039.ckpt]'" in output


def test_cli_search_without_validation_stops_before_any_trial(synthetic_root, tmp_path):
    sweep_dir = tmp_path / "search"
    output = cli_error(
        "hparams_search=optuna",
        f"data.root={synthetic_root}",
        "data.val_fraction=0",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert "optimises monitor.metric=val/acc, which data.val_fraction=0 does not produce" in output
    assert "Traceback" not in output and not sweep_dir.exists()


@pytest.mark.parametrize(
    ("override", "moved_to"),
    [
        ("module.mixup_alpha=0.2", "data.mixup_alpha"),
        ("+module.cutmix_alpha=1.0", "data.cutmix_alpha"),
        ("module.distill.teachers=[a.ckpt]", "callbacks.distill"),
    ],
)
def test_a_moved_key_names_where_it_went(override, moved_to, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning", override, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert f"moved to {moved_to}" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
