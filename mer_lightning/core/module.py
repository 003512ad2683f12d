"""The one LightningModule that wraps every architecture."""

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from mer_lightning.core.data.normalize import channel_stats, normalize_images
from mer_lightning.core.errors import UserError
from mer_lightning.core.metrics import classification_metrics
from mer_lightning.core.models.tta import averaged_logits, check_shift

# When the LR scheduler steps: after each epoch, or after each optimizer step (then it is
# built with `total_steps`, the run's optimizer steps, as one-cycle needs).
SCHEDULER_INTERVALS = ("epoch", "step")
DIVERGED_FIX = (
    "lower module.optimizer.lr, set trainer.gradient_clip_val (e.g. 1.0), or use "
    "trainer.precision=32-true"
)


class TrainingDiverged(UserError):
    """The loss or the weights stopped being finite numbers; training cannot recover."""


class TrainingObjective(Protocol):
    """What a recipe may put in place of the labels' loss (e.g. distillation's callback).

    Called with the labels' loss of a training batch, the net's logits and the batch's
    images (as the net's input was made from them); returns the loss to minimise and named
    parts to log as `train/<name>`.
    """

    def __call__(
        self, label_loss: torch.Tensor, logits: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class EmotionClassifier(L.LightningModule):
    """Cross-entropy training of an injected nn.Module, with val/test metrics.

    Batches arrive as images (uint8, or float 0-255 pixels once blended by the data step's
    MixUp/CutMix) with integer or soft labels; `normalize` turns images into the float input
    the net expects. `arch` (the net's constructor config) and the preprocessing are saved as
    hyperparameters so that a checkpoint alone rebuilds and feeds the model. With
    `tta_hflip`, validation, test and predict average the logits of each image and its
    mirror, and with `tta_shift` > 0 those of the image moved by that many pixels up, down,
    left and right too (training still sees one view per step). Recipes plug in from
    outside: a callback may set `objective` to change the training loss (distillation), an
    optimizer may take Lightning's closure and evaluate it more than once (SAM).
    """

    def __init__(
        self,
        net: nn.Module,
        class_names: Sequence[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        image_size: int = 80,
        arch: dict[str, Any] | None = None,
        channels_last: bool = False,
        compile: bool = False,
        tta_hflip: bool = False,
        tta_shift: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"module.label_smoothing={label_smoothing} must be in [0, 1)")
        check_shift(tta_shift, image_size)
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise UserError(
                f"module.scheduler_interval={scheduler_interval!r} must be one of "
                f"{list(SCHEDULER_INTERVALS)}: epoch steps the scheduler after each epoch, step "
                "after each optimizer step"
            )
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        # The training loss in place of the labels' own; set by a recipe's callback, never
        # saved (e.g. distillation's teachers stay out of the checkpoint).
        self.objective: TrainingObjective | None = None
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        n = len(class_names)
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float)
        self.loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.register_buffer("mean", channel_stats(mean), persistent=False)
        self.register_buffer("std", channel_stats(std), persistent=False)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_metrics = classification_metrics(class_names, "val")
        self.test_metrics = classification_metrics(class_names, "test")
        self.test_confusion = MulticlassConfusionMatrix(n)
        self.confusion_matrix: torch.Tensor | None = None
        # Each image's probabilities and label from the last val and test loops, so that
        # predictions.csv holds the very scores the metrics counted, without another pass.
        self.scored_batches: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        # (epoch, batch) last counted and logged: an optimizer may evaluate a step's closure
        # more than once (SAM, L-BFGS), and each batch counts once.
        self.counted_batch: tuple[int, int] | None = None
        # Saved with the weights, so that a resumed run keeps counting its throughput.
        self.register_buffer("train_images_seen", torch.zeros((), dtype=torch.long))
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if compile:  # in place: the state_dict keys (net.*) stay those of the plain net
            self.net.compile()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) images -> normalised float input of the net."""
        x = normalize_images(images, self.mean, self.std)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of uint8 images."""
        return self.net(self.normalize(images))

    def evaluation_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits as validation, test and predict score them: averaged over the
        mirror (`tta_hflip`) and the moved faces (`tta_shift`), else those of `forward`."""
        hflip, shift = self.hparams.tta_hflip, self.hparams.tta_shift
        return averaged_logits(self.net, self.normalize(images), hflip, shift)

    def training_step(self, batch, batch_idx):
        images, targets = batch
        logits = self.net(self.normalize(images))
        loss = self.loss(logits, targets)
        parts: dict[str, torch.Tensor] = {}
        if self.objective is not None:
            loss, parts = self.objective(loss, logits, images)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"train/loss is {loss.item()} at epoch {self.current_epoch}, global step "
                f"{self.global_step} (batch {batch_idx}); stopped before the weights took a bad "
                f"step. Fix: {DIVERGED_FIX}"
            )
        if self.counted_batch == (self.current_epoch, batch_idx):
            return loss
        self.counted_batch = (self.current_epoch, batch_idx)
        self.train_images_seen += targets.shape[0]
        # Under MixUp or CutMix, a blended face counts as its larger share's class.
        self.train_acc(logits, targets.argmax(dim=1) if targets.ndim == 2 else targets)
        for name, value in parts.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    @staticmethod
    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities of evaluation logits, as predictions.csv and predict give them."""
        # float32 softmax: under bf16 autocast it would keep 3 digits, too few to average.
        return logits.float().softmax(dim=1)

    def on_train_start(self) -> None:
        """Stop a continued run whose per-step schedule, restored from its checkpoint, ends
        before this run's last step (torch would fail only when it got there)."""
        if self.scheduler_interval != "step":
            return
        needed = int(self.trainer.estimated_stepping_batches)
        for config in self.trainer.lr_scheduler_configs:
            planned = getattr(config.scheduler, "total_steps", None)
            if planned is not None and planned < needed:
                raise UserError(
                    f"module.scheduler ({type(config.scheduler).__name__}) was built for "
                    f"{planned} optimizer steps by the run this one continues, but this run "
                    f"(trainer.max_epochs={self.trainer.max_epochs}) needs {needed}: continue "
                    "with the trainer.max_epochs and data.batch_size it started with, or start a "
                    "new run for the longer schedule"
                )

    def on_validation_epoch_start(self) -> None:
        self.scored_batches["val"] = []

    def on_test_epoch_start(self) -> None:
        self.scored_batches["test"] = []

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        logits = self.evaluation_logits(images)
        self.scored_batches["val"].append((self.probabilities(logits), labels))
        self.log(
            "val/loss", self.loss(logits, labels), on_epoch=True, prog_bar=True, sync_dist=True
        )
        self.val_metrics.update(logits, labels)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()
        self.log("val/acc", metrics.pop("val/acc"), prog_bar=True)
        self.log_dict(metrics)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        images, labels = batch
        logits = self.evaluation_logits(images)
        self.scored_batches["test"].append((self.probabilities(logits), labels))
        self.log("test/loss", self.loss(logits, labels), on_epoch=True, sync_dist=True)
        self.test_metrics.update(logits, labels)
        self.test_confusion.update(logits, labels)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        self.confusion_matrix = self.test_confusion.compute().cpu()
        self.test_confusion.reset()

    def predict_step(self, batch, batch_idx):
        """Class probabilities and true label of each image (labels ride along in the batch)."""
        images, labels = batch
        return self.probabilities(self.evaluation_logits(images)), labels

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write weights that are NaN or inf, so the previous checkpoint survives."""
        bad = [
            name
            for name, tensor in checkpoint["state_dict"].items()
            if tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
        if bad:
            raise TrainingDiverged(
                f"weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} are not finite "
                f"at epoch {self.current_epoch}, global step {self.global_step}; not saving "
                f"them over the last good checkpoint. Fix: {DIVERGED_FIX}"
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stop fitting on from a checkpoint trained without an LR schedule under one: its
        optimizer state lacks what the schedule keeps there, and torch would fail mid-step."""
        fitting = self._trainer is not None and self._trainer.state.fn == "fit"
        if fitting and self.scheduler_factory is not None and not checkpoint.get("lr_schedulers"):
            schedule = getattr(self.scheduler_factory, "func", self.scheduler_factory)
            raise UserError(
                f"checkpoint {self._trainer.ckpt_path} was trained without an LR schedule and "
                f"this run has one (module.scheduler: {getattr(schedule, '__name__', schedule)}): "
                "continue it with module/scheduler=none, or start a new run"
            )

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The configured optimizer over the net's parameters, without its LR schedule: what
        Lightning's loop steps, and what the benchmark's plain loop (no Trainer) steps too."""
        optimizer = self.optimizer_factory(params=self.parameters())
        accumulate = 1 if self._trainer is None else self._trainer.accumulate_grad_batches
        if accumulate > 1 and not getattr(optimizer, "accumulates_gradients", True):
            # e.g. SAM: its second pass re-runs only the step's last batch.
            raise UserError(
                f"trainer.accumulate_grad_batches={accumulate} does not work with "
                f"module.optimizer._target_={type(optimizer).__module__}."
                f"{type(optimizer).__name__}, which re-evaluates each step's last batch. Fix: "
                "set it to 1 and raise data.batch_size instead"
            )
        return optimizer

    def configure_optimizers(self):
        """The optimizer and its LR schedule, stepped per epoch or per optimizer step."""
        optimizer = self.build_optimizer()
        if self.scheduler_factory is None:
            return optimizer
        if self.scheduler_interval == "epoch":
            scheduler = self.scheduler_factory(optimizer=optimizer)
        else:  # a per-step schedule (one-cycle) spans the run's optimizer steps
            total_steps = int(self.trainer.estimated_stepping_batches)
            try:
                scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total_steps)
            except TypeError as error:
                raise UserError(
                    f"module.scheduler_interval=step builds module.scheduler with total_steps, "
                    f"which it does not take ({error}): use a per-step scheduler such as "
                    "torch.optim.lr_scheduler.OneCycleLR, or module.scheduler_interval=epoch"
                ) from error
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
