"""predictions.csv: every val and test image's class probabilities from a run's best checkpoint.

Training writes it beside metrics.json (val and test, as trained); `python -m
mer_lightning.evaluate` writes it for the test split of its overrides (and val, unless they
change data.*). Its rows come from the val and test loops that computed the metrics, not from
another pass. It is small enough to commit with published results, so that `python -m
mer_lightning.ensemble` builds ensembles from these files alone, long after the checkpoints
are gone, and anyone can check a published accuracy against the per-image predictions.
"""

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from mer_lightning.core.errors import UserError

log = logging.getLogger(__name__)

FILE = "predictions.csv"
FIXED_COLUMNS = ("split", "file", "label")


@dataclass
class SplitPredictions:
    """One split's rows: image files (relative to the dataset root), true class indices and
    class probabilities, in the same order."""

    files: list[str]
    labels: torch.Tensor
    probabilities: torch.Tensor

    def accuracy(self) -> float:
        """Share of images whose most probable class is the true one."""
        return float((self.probabilities.argmax(dim=1) == self.labels).float().mean())


def scored(module, datamodule, split: str) -> SplitPredictions:
    """The split's probabilities from the module's last val or test loop (trainer.validate or
    trainer.test), the ones its metrics counted; with trainer.limit_{val,test}_batches, those
    of the first batches' images only."""
    batches = module.scored_batches.get(split)
    if batches is None:
        raise RuntimeError(f"no {split} loop has run on this module: nothing to write")
    labels = torch.cat([labels for _, labels in batches]).cpu()
    return SplitPredictions(
        datamodule.split_files(split)[: len(labels)],  # the loader keeps the files' order
        labels,
        torch.cat([probabilities for probabilities, _ in batches]).cpu(),
    )


def write_predictions(
    path: Path, trainer: L.Trainer, module, datamodule, splits: Sequence[str]
) -> None:
    """predictions.csv of the val and test loops just run on `splits`; single-process runs
    only."""
    if trainer.world_size > 1:
        log.warning(
            "%s not written: under DDP each process scores a shard of the images; run "
            "`python -m mer_lightning.evaluate` on the run dir in one process instead",
            path,
        )
        return
    predicted = {split: scored(module, datamodule, split) for split in splits}
    write_csv(path, datamodule.class_names, predicted)


def write_csv(path: Path, class_names: Sequence[str], splits: dict[str, SplitPredictions]) -> None:
    """predictions.csv: split, file, true class name, then one probability per class."""
    names = list(class_names)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FIXED_COLUMNS, *names])
        for split, rows in splits.items():
            for file, label, probs in zip(
                rows.files, rows.labels.tolist(), rows.probabilities.tolist(), strict=True
            ):
                writer.writerow([split, file, names[label], *(f"{p:.6f}" for p in probs)])


def read_predictions(path: Path) -> tuple[list[str], dict[str, SplitPredictions]]:
    """The class names and each split's rows of a predictions.csv."""
    if not path.is_file():
        raise UserError(f"{path} is missing")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        names = header[len(FIXED_COLUMNS) :]
        if tuple(header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS or not names:
            raise UserError(
                f"{path} is not a predictions.csv: its header should be "
                f"{','.join(FIXED_COLUMNS)},<class names>"
            )
        rows: dict[str, list[list[str]]] = {}
        for row in reader:
            rows.setdefault(row[0], []).append(row)
    index = {name: i for i, name in enumerate(names)}
    unknown = {row[2] for split_rows in rows.values() for row in split_rows} - set(index)
    if unknown:
        raise UserError(
            f"{path} has rows labelled {sorted(unknown)}, which are not among its class columns "
            f"{names}; write it again with `python -m mer_lightning.evaluate`"
        )
    return names, {
        split: SplitPredictions(
            [row[1] for row in split_rows],
            torch.tensor([index[row[2]] for row in split_rows], dtype=torch.long),
            torch.tensor([[float(p) for p in row[3:]] for row in split_rows]),
        )
        for split, split_rows in rows.items()
    }
