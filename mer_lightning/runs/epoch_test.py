"""The test split scored at the end of training epochs, for time-to-accuracy reports.

How many epochs (and seconds) a model needs to reach a given test accuracy is a result of
its own (the paper's "generation order" compares training time). Scoring the test split
along the way must not let it choose anything: the score is logged as `epoch_test/acc`,
kept in the run's per-epoch history, and refused as `monitor.metric` (runs/validate.py);
checkpoints and recipes are still chosen on val.
"""

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy

from mer_lightning.core.errors import UserError

KEY = "epoch_test/acc"


class EpochTest(L.Callback):
    """Test accuracy after every `every_n_epochs`-th training epoch (0 = off)."""

    def __init__(self, every_n_epochs: int = 0) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise UserError(
                f"callbacks.epoch_test.every_n_epochs={every_n_epochs} must be an integer >= 0 "
                "(0 = off, 1 = after every epoch)"
            )
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.every_n_epochs or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        datamodule = trainer.datamodule
        accuracy = MulticlassAccuracy(datamodule.num_classes, average="micro")
        accuracy = accuracy.to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        with torch.inference_mode(), trainer.precision_plugin.forward_context():
            for images, labels in datamodule.test_dataloader():
                logits = pl_module.evaluation_logits(images.to(pl_module.device))
                accuracy.update(logits, labels.to(pl_module.device))
        pl_module.train(was_training)
        pl_module.log(KEY, float(accuracy.compute()), on_epoch=True, sync_dist=False)
