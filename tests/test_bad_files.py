"""Bad files in class folders: skipped with one warning or named in an error; odd ones converted."""

import json
import logging

import pytest
import torch

from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.data.images import inspect_file, read_image
from mer_lightning.core.errors import UserError
from mer_lightning.train import run
from tests.data_faults import CONVERTIBLE, UNREADABLE, copy_dataset, write_bad_files
from tests.helpers import compose_config, fast_overrides


@pytest.fixture
def broken_root(synthetic_root, tmp_path):
    """The synthetic dataset plus every kind of bad and odd file in train/anger."""
    root = copy_dataset(synthetic_root, tmp_path / "Micro_Expressions")
    write_bad_files(root)
    return root


def setup_datamodule(root, **kwargs) -> MicroExpressionDataModule:
    dm = MicroExpressionDataModule(root=str(root), image_size=32, **kwargs)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_files_are_told_apart(broken_root, name):
    info, image = inspect_file(broken_root / "train" / "anger" / name)
    assert image is None and not info.readable
    assert info.problem_kind == UNREADABLE[name]
    with pytest.raises(UserError, match=name):
        read_image(info.path, 32)


@pytest.mark.parametrize("name", sorted(CONVERTIBLE))
def test_odd_images_are_converted_to_rgb_of_the_configured_size(broken_root, name):
    path = broken_root / "train" / "anger" / name
    info, _ = inspect_file(path)
    assert (info.format, info.mode, info.size) == CONVERTIBLE[name]
    tensor = read_image(path, 32)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.uint8
    if info.mode == "L":
        assert torch.equal(tensor[0], tensor[1]) and torch.equal(tensor[1], tensor[2])


def test_skip_leaves_out_unreadable_files_with_one_warning(broken_root, synthetic_root, caplog):
    clean = setup_datamodule(synthetic_root)
    with caplog.at_level(logging.WARNING):
        dm = setup_datamodule(broken_root, on_bad_file="skip")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "skipped 3 unreadable file(s)" in message
    for name in UNREADABLE:
        assert str(broken_root / "train" / "anger" / name) in message
    kept = {path.name for path in dm.train_images.paths}
    assert set(CONVERTIBLE) <= kept and not set(UNREADABLE) & kept
    assert len(dm.train_images.labels) == len(clean.train_images.labels) + len(CONVERTIBLE)
    assert dm.data_summary()["skipped_bad_files"] == 3


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_raise_stops_with_an_error_naming_the_file(synthetic_root, tmp_path, name):
    root = copy_dataset(synthetic_root, tmp_path / "Micro_Expressions")
    write_bad_files(root)
    for other in set(UNREADABLE) - {name}:
        (root / "train" / "anger" / other).unlink()
    with pytest.raises(UserError) as error:
        setup_datamodule(root, on_bad_file="raise")
    message = str(error.value)
    assert str(root / "train" / "anger" / name) in message
    assert UNREADABLE[name] in message
    assert "data.on_bad_file=skip" in message


def test_unknown_policy_names_the_key(synthetic_root):
    with pytest.raises(
        UserError, match=r"data.on_bad_file=ignore is not one of \['skip', 'raise'\]"
    ):
        setup_datamodule(synthetic_root, on_bad_file="ignore")


@pytest.mark.slow
def test_training_on_a_damaged_dataset_finishes(broken_root, tmp_path, caplog):
    overrides = fast_overrides("cnn1", broken_root, "trainer.limit_predict_batches=1")
    with caplog.at_level(logging.INFO):
        summary = run(compose_config(overrides, tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and summary.epochs == 1
    assert metrics["data"]["skipped_bad_files"] == 3
    assert metrics["data"]["audit"]["broken_files"] == 2
    assert metrics["data"]["audit"]["non_image_files"] == 1
    assert metrics["data"]["audit"]["unexpected_images"] == len(CONVERTIBLE)
    assert metrics["train_images_seen"] == metrics["data"]["train_images"]
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data audit:")]
    assert len(summaries) == 1 and "2 unreadable or corrupt, 1 not images" in summaries[0]
