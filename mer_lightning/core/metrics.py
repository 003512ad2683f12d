"""The classification metrics of val and test, as torchmetrics collections."""

from collections.abc import Sequence

from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

PER_CLASS = {"precision": MulticlassPrecision, "recall": MulticlassRecall, "f1": MulticlassF1Score}
AVERAGES = ("macro", "weighted")


def classification_metrics(class_names: Sequence[str], stage: str) -> MetricCollection:
    """Accuracy, per-class and averaged precision/recall/F1, keyed `<stage>/<name>`.

    Keys: `test/acc`, `test/f1/fear`, `test/f1_macro`, `test/precision_weighted`, ...
    """
    n = len(class_names)
    metrics = {"acc": MulticlassAccuracy(n, average="micro")}
    for name, metric in PER_CLASS.items():
        metrics[name] = ClasswiseWrapper(
            metric(n, average=None), labels=list(class_names), prefix=f"{name}/"
        )
        for average in AVERAGES:
            metrics[f"{name}_{average}"] = metric(n, average=average)
    # compute_groups=False: with shared states, ClasswiseWrapper members warn "compute before
    # update" from the second epoch on; the cost of separate states is negligible at 7 classes.
    return MetricCollection(metrics, prefix=f"{stage}/", compute_groups=False)
