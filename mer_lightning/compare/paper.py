"""The figures the paper reports, to set beside ours in every comparison.

Sánchez García, López Lin, Romero-Herrera (2023), "Detection of facial micro-expressions
using CNN", on the same Kaggle test split: Table 1 (train and test accuracy of each model)
and Figure 6 (CNN1's classification report). Keys are those of metrics.json.
"""

PAPER_FIGURES: dict[str, dict[str, float]] = {
    "cnn1": {
        "train_acc": 0.9120,
        "test_acc": 0.8253,
        "test_f1_macro": 0.79,
        "test/f1/anger": 0.82,
        "test/f1/disgust": 0.70,
        "test/f1/fear": 0.61,
        "test/f1/happiness": 0.93,
        "test/f1/neutral": 0.79,
        "test/f1/sadness": 0.79,
        "test/f1/surprise": 0.87,
    },
    "cnn2": {"train_acc": 0.9005, "test_acc": 0.8183},
    "resnet18": {"train_acc": 0.9420, "test_acc": 0.8081},
}


VARIANT_SEPARATOR = "-"  # cnn1-batchnorm: a declared variant of the paper's cnn1


def paper_figure(model: str | None, key: str) -> float | None:
    """The paper's value of `key` for `model` (a model.name); None when it reports none, as
    for a variant of its nets (`cnn1-batchnorm`)."""
    return PAPER_FIGURES.get(model or "", {}).get(key)


def paper_target(model: str | None) -> float | None:
    """The paper's test accuracy for the net `model` is or varies: the bar its
    time-to-accuracy is measured against."""
    base = (model or "").split(VARIANT_SEPARATOR)[0]
    return paper_figure(base, "test_acc")
