"""A NaN or inf loss, or non-finite weights, stop the run and leave the last good checkpoint."""

import lightning as L
import pytest
import torch

from mer_lightning.core.module import EmotionClassifier, TrainingDiverged
from mer_lightning.train import run
from tests.helpers import compose_config, fast_overrides

# 7 steps per epoch (91 training images in batches of 13); last.ckpt after every step.
EVERY_STEP = [
    "data.batch_size=13",
    "trainer.max_epochs=2",
    "callbacks.last_checkpoint.every_n_train_steps=1",
    "callbacks.last_checkpoint.train_time_interval=null",
]


class PoisonWeights(L.Callback):
    """Makes one weight infinite right after training step `step` (before checkpoints run)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.net.classifier[-1].bias[0] = float("inf")


def assert_finite_checkpoint(path, global_step: int) -> None:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == global_step
    for name, tensor in checkpoint["state_dict"].items():
        if tensor.is_floating_point():
            assert torch.isfinite(tensor).all(), name


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    synthetic_root, tmp_path, monkeypatch
):
    normalize = EmotionClassifier.normalize

    def nan_from_step_5(self, images):
        x = normalize(self, images)
        return x * float("nan") if self.training and self.global_step >= 5 else x

    monkeypatch.setattr(EmotionClassifier, "normalize", nan_from_step_5)
    with pytest.raises(TrainingDiverged) as error:
        run(compose_config(fast_overrides("cnn1", synthetic_root, *EVERY_STEP), tmp_path))
    message = str(error.value)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert "train/loss is nan at epoch 0, global step 5" in message
    assert "lower module.optimizer.lr" in message
    assert f"the last good checkpoint is kept: {last}" in message
    assert_finite_checkpoint(last, global_step=5)
    assert not (tmp_path / "metrics.json").exists()


def test_non_finite_weights_are_never_saved(synthetic_root, tmp_path):
    poison = "+callbacks.poison={_target_:tests.test_nan.PoisonWeights,step:4}"
    overrides = fast_overrides("cnn1", synthetic_root, *EVERY_STEP, poison)
    with pytest.raises(TrainingDiverged) as error:
        run(compose_config(overrides, tmp_path))
    message = str(error.value)
    assert "weights net.classifier.5.bias are not finite at epoch 0, global step 4" in message
    assert_finite_checkpoint(tmp_path / "checkpoints" / "last.ckpt", global_step=3)


def test_a_huge_learning_rate_stops_with_the_fix(synthetic_root, tmp_path):
    overrides = fast_overrides("cnn1", synthetic_root, *EVERY_STEP, "module.optimizer.lr=1e30")
    with pytest.raises(TrainingDiverged, match=r"(train/loss is (nan|inf))|(not finite)") as error:
        run(compose_config(overrides, tmp_path))
    assert "Training stopped; the last good checkpoint is kept" in str(error.value)
