"""Recipes plug in by config: a callback or an optimizer named only in the config reaches the
training step, and the LightningModule imports neither."""

import ast
from pathlib import Path

import lightning as L
import pytest
import torch

from mer_lightning.train import run
from tests.helpers import compose_config, fast_overrides

MODULE_FILE = Path(__file__).resolve().parents[1] / "mer_lightning" / "core" / "module.py"
CALLS: dict[str, int] = {"objective": 0, "closure": 0, "steps": 0}


class HalveTheLoss(L.Callback):
    """A made-up recipe: train on half the labels' loss, and log what it did."""

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":
            pl_module.objective = self.objective

    def objective(self, label_loss, logits, images):
        CALLS["objective"] += 1
        return label_loss / 2, {"halved_from": label_loss.detach()}


class TwiceEvaluatedSGD(torch.optim.SGD):
    """A made-up optimizer that evaluates each step's closure twice, as SAM does."""

    def step(self, closure=None):
        CALLS["steps"] += 1
        for _ in range(2):
            CALLS["closure"] += 1
            with torch.enable_grad():
                loss = closure()
        super().step()
        return loss


def test_a_callback_and_an_optimizer_named_by_config_reach_the_training_step(
    synthetic_root, tmp_path
):
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        f"+callbacks.halve._target_={__name__}.HalveTheLoss",
        f"module.optimizer._target_={__name__}.TwiceEvaluatedSGD",
        "~module.optimizer.fused",
    )
    CALLS.update(objective=0, closure=0, steps=0)
    results = run(compose_config(overrides, tmp_path))

    assert CALLS["steps"] > 0 and CALLS["closure"] == 2 * CALLS["steps"]
    assert CALLS["objective"] == CALLS["closure"]  # every evaluation used the recipe's loss
    epoch = results.history[0]
    assert epoch["train/loss_epoch"] * 2 == pytest.approx(epoch["train/halved_from"], rel=1e-4)
    assert results.train_images_seen == results.data["train_images"]  # each batch counted once


def test_the_module_names_no_recipe():
    tree = ast.parse(MODULE_FILE.read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not any(name.startswith("mer_lightning.recipes") for name in imported)
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
    assert not names & {"distill", "batch_mix", "mixup_alpha", "cutmix_alpha", "step_inputs"}
