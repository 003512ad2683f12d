"""Per-epoch record of the logged curves, for training_curves.png and metrics.json."""

import lightning as L
from lightning.pytorch.callbacks import Timer

CURVE_KEYS = ("train/loss_epoch", "train/acc", "val/loss", "val/acc", "epoch_test/acc")


def is_curve(key: str) -> bool:
    """Whether a logged key is an epoch curve: the ones above, and any other epoch-level
    train/ number (e.g. a recipe's loss part, train/distill_loss)."""
    if key in CURVE_KEYS:
        return True
    return key.startswith("train/") and key != "train/loss" and not key.endswith("_step")


class EpochHistory(L.Callback):
    """Keeps each epoch's train and val loss and accuracy as plain floats, and the fit
    seconds so far (from the Timer callback) for time-to-accuracy.

    Loggers store these too, but in logger-specific formats; the run's own reports read
    them from here whatever logger is configured.
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": float(trainer.current_epoch)}
        row.update({key: float(value) for key, value in metrics.items() if is_curve(key)})
        timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
        if timers:
            row["fit_seconds"] = float(timers[0].time_elapsed("train"))
        self.epochs.append(row)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict.get("epochs", []))
