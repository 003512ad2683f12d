"""User mistakes keep their one line wherever they are raised: inside Hydra's instantiate,
in a list-valued config key, or as a disk that fills while a run writes its files."""

import errno
import json

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from mer_lightning.core.errors import UserError
from mer_lightning.runs import reports
from mer_lightning.runs.checkpoint_io import AtomicCheckpointIO
from mer_lightning.runs.console import user_error_of
from mer_lightning.runs.validate import problems
from tests.disk_helpers import fill_disk
from tests.helpers import REPO, compose_config, fast_overrides, run_cli

CNN = "mer_lightning.core.models.cnn.BlockCNN"


def test_a_user_error_wrapped_by_instantiate_is_found_at_any_depth():
    too_small = {"_target_": CNN, "num_classes": 7, "input_size": 7}
    with pytest.raises(InstantiationException) as direct:
        hydra.utils.instantiate(OmegaConf.create(too_small))
    nested = {"_target_": "torch.nn.Sequential", "_args_": [too_small]}
    with pytest.raises(InstantiationException) as wrapped_twice:
        hydra.utils.instantiate(OmegaConf.create(nested))
    for error in (direct.value, wrapped_twice.value):
        assert "model.input_size=7 is too small" in str(user_error_of(error))
    assert user_error_of(ValueError("a bug")) is None  # bugs keep their traceback


def test_a_full_disk_anywhere_in_a_chain_is_a_user_error_naming_the_file():
    named = OSError(errno.ENOSPC, "No space left on device", "runs/a/metrics.json")
    assert "could not write runs/a/metrics.json" in str(user_error_of(named))
    try:  # torch.save into a file re-raises the OS error as a RuntimeError
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("unexpected pos 704 vs 598") from None
    except RuntimeError as error:
        unnamed = error
    unnamed.__suppress_context__ = False
    message = str(user_error_of(unnamed, where="the files of runs/a"))
    assert "disk full: could not write the files of runs/a" in message
    assert "resume=true" in message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.channels=[]", "model.channels=[] must be a non-empty list"),
        ("model.hidden=[0,32]", "model.hidden=[0, 32] must be a list of integers >= 1"),
        ("model.convs_per_block=0", "model.convs_per_block=0 must be an integer >= 1"),
        ("data.mean=[0.5]", "data.mean=[0.5] has 1 values for 3 image channels"),
        ("data.std=[0.5,0,0.5]", "data.std=[0.5, 0, 0.5] must be a list of numbers > 0"),
        ("data.std=[]", "data.std=[] has 0 values for 3 image channels"),
        ("data.augment.blur.sigma=[]", "data.augment.blur.sigma=[] must be a [low, high] pair"),
        ("data.augment.blur.kernel_size=4", "data.augment.blur.kernel_size=4 must be an odd"),
    ],
)
def test_list_and_size_values_are_checked_before_anything_is_built(
    override, named, synthetic_root, tmp_path
):
    cfg = compose_config([f"data.root={synthetic_root}", override], tmp_path)
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith(named), found


def test_resnet_sizes_are_checked_and_the_shipped_configs_pass(synthetic_root, tmp_path):
    cfg = compose_config([f"data.root={synthetic_root}", "model=resnet18"], tmp_path)
    assert problems(cfg) == []
    bad = compose_config(
        [f"data.root={synthetic_root}", "model=resnet18", "model.reduction_dim=0"], tmp_path
    )
    assert problems(bad) == ["model.reduction_dim=0 must be an integer >= 1, e.g. 512"]


@pytest.mark.slow
def test_a_model_rejecting_its_size_inside_instantiate_exits_2_with_one_line(
    synthetic_root, tmp_path
):
    args = [*fast_overrides("cnn1", synthetic_root), f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli(*args, "data.image_size=7", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "error: model.input_size=7 is too small for 3 max-pool blocks" in result.stdout
    assert "HYDRA_FULL_ERROR" not in output and "Traceback" not in output


def test_write_json_on_a_full_disk_keeps_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    reports.write_json(path, {"test_acc": 0.5})
    fill_disk(monkeypatch.setattr)
    with pytest.raises(UserError) as error:
        reports.write_json(path, {"test_acc": 0.8, "history": ["epoch"] * 100})
    assert f"could not write {path}" in str(error.value)
    assert json.loads(path.read_text()) == {"test_acc": 0.5}
    assert list(tmp_path.iterdir()) == [path]  # the partial temporary file is gone


def test_a_checkpoint_write_on_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint({"epoch": 0, "weight": torch.zeros(64)}, path)
    fill_disk(monkeypatch.setattr)
    with pytest.raises(UserError) as error:
        plugin.save_checkpoint({"epoch": 1, "weight": torch.ones(64)}, path)
    assert f"could not write {path}" in str(error.value)
    assert torch.load(path, weights_only=True)["epoch"] == 0
    assert list(path.parent.iterdir()) == [path]


@pytest.mark.slow
def test_a_disk_full_mid_run_exits_2_naming_the_file_and_resume_finishes_the_run(
    synthetic_root, tmp_path
):
    run_dir = tmp_path / "run"
    args = [
        *fast_overrides("cnn1", synthetic_root),
        f"hydra.run.dir={run_dir}",
        "trainer.max_epochs=2",
        "callbacks.model_summary=null",
    ]
    full = "+callbacks.full_disk={_target_:tests.disk_helpers.FullDiskFrom,epoch:1}"
    result = run_cli(*args, full, cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    lines = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "disk full: could not write" in lines[0], output[-3000:]
    assert str(run_dir / "checkpoints") in lines[0] and "resume=true" in lines[0]

    checkpoints = run_dir / "checkpoints"
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0  # the end of the first epoch, written before the disk filled
    assert not (run_dir / "metrics.json").exists()

    resumed = run_cli(*args, "resume=true", cwd=REPO)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["resumed_from"].endswith("last.ckpt")
