"""Files a run writes for people: the paper's Figure 6 report, confusion matrix, curves."""

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

from mer_lightning.core.metrics import AVERAGES, PER_CLASS  # noqa: E402
from mer_lightning.runs.disk import atomic_open  # noqa: E402

log = logging.getLogger(__name__)


def per_class_table(
    metrics: Mapping[str, float], confusion: torch.Tensor, class_names: Sequence[str], stage: str
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class, from logged metrics and the matrix."""
    support = confusion.sum(dim=1).tolist()
    return {
        name: {
            **{kind: float(metrics[f"{stage}/{kind}/{name}"]) for kind in PER_CLASS},
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }


def classification_report(
    metrics: Mapping[str, float], per_class: Mapping[str, Mapping[str, float]], stage: str
) -> str:
    """Text laid out like the paper's Figure 6 (scikit-learn's classification_report)."""
    total = sum(int(row["support"]) for row in per_class.values())
    width = max(len("weighted avg"), *(len(name) for name in per_class))
    header = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [header, ""]
    for name, row in per_class.items():
        lines.append(
            f"{name:>{width}} {row['precision']:>9.2f} {row['recall']:>9.2f} "
            f"{row['f1']:>9.2f} {int(row['support']):>9d}"
        )
    lines.append("")
    lines.append(
        f"{'accuracy':>{width}} {'':>9} {'':>9} {metrics[f'{stage}/acc']:>9.2f} {total:>9d}"
    )
    for average in AVERAGES:
        values = [metrics[f"{stage}/{kind}_{average}"] for kind in PER_CLASS]
        lines.append(
            f"{average + ' avg':>{width}} {values[0]:>9.2f} {values[1]:>9.2f} "
            f"{values[2]:>9.2f} {total:>9d}"
        )
    return "\n".join(lines) + "\n"


def confusion_figure(confusion: torch.Tensor, class_names: Sequence[str]):
    """The confusion matrix as a matplotlib figure, class names on both axes."""
    metric = MulticlassConfusionMatrix(len(class_names))
    fig, ax = metric.plot(val=confusion, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.set_size_inches(7, 6)  # torchmetrics' figure lays itself out (constrained layout)
    return fig


def write_confusion_csv(path: Path, confusion: torch.Tensor, class_names: Sequence[str]) -> None:
    """Rows are true classes, columns predicted classes."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\predicted", *class_names])
        for name, row in zip(class_names, confusion.tolist(), strict=True):
            writer.writerow([name, *row])


def training_curves_figure(history: Sequence[Mapping[str, float]]):
    """Loss and accuracy per epoch, train and val: the paper's training plots."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (train_key, val_key, title) in zip(
        (loss_ax, acc_ax),
        (("train/loss_epoch", "val/loss", "loss"), ("train/acc", "val/acc", "accuracy")),
        strict=True,
    ):
        for key, label in ((train_key, "train"), (val_key, "val")):
            points = [(row["epoch"] + 1, row[key]) for row in history if key in row]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> None:
    """Write a figure and free its memory."""
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Pretty JSON, keys in insertion order; written whole or not at all (a torn metrics.json
    would stop resume=true), and a full disk is one line naming the file."""
    with atomic_open(path, "w") as handle:
        handle.write(json.dumps(payload, indent=2) + "\n")


def write_test_reports(out_dir: Path, results, confusion, loggers: Sequence = ()) -> None:
    """classification_report.txt and confusion_matrix.{csv,png} of a test; fills
    `results.per_class` (a RunResults). Also the confusion matrix figure in the TensorBoard
    loggers."""
    if confusion is None:
        return
    names = results.classes
    results.per_class = per_class_table(results.metrics, confusion, names, "test")
    text = classification_report(results.metrics, results.per_class, "test")
    (out_dir / "classification_report.txt").write_text(text)
    log.info("test classification report:\n%s", text)
    write_confusion_csv(out_dir / "confusion_matrix.csv", confusion, names)
    figure = confusion_figure(confusion, names)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure("test/confusion_matrix", figure, close=False)
    save_figure(figure, out_dir / "confusion_matrix.png")
