"""Val/test metrics and the Figure 6 report against a hand-computed confusion matrix."""

import pytest
import torch

from mer_lightning.core.metrics import classification_metrics
from mer_lightning.runs.reports import classification_report, per_class_table

NAMES = ["anger", "fear", "happiness"]
# true \ predicted:  anger fear happiness
#   anger              3    1     0        (4)
#   fear               1    1     1        (3)
#   happiness          0    0     3        (3)
TARGETS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS = torch.tensor([0, 0, 0, 1, 0, 1, 2, 2, 2, 2])


@pytest.fixture
def computed():
    metrics = classification_metrics(NAMES, "test")
    metrics.update(torch.nn.functional.one_hot(PREDS, 3).float(), TARGETS)
    return {key: float(value) for key, value in metrics.compute().items()}


def test_per_class_and_averaged_metrics_match_hand_computation(computed):
    precision = {"anger": 3 / 4, "fear": 1 / 2, "happiness": 3 / 4}
    recall = {"anger": 3 / 4, "fear": 1 / 3, "happiness": 1.0}
    f1 = {
        name: 2 * precision[name] * recall[name] / (precision[name] + recall[name])
        for name in NAMES
    }
    support = {"anger": 4, "fear": 3, "happiness": 3}
    assert computed["test/acc"] == pytest.approx(7 / 10)
    for name in NAMES:
        assert computed[f"test/precision/{name}"] == pytest.approx(precision[name])
        assert computed[f"test/recall/{name}"] == pytest.approx(recall[name])
        assert computed[f"test/f1/{name}"] == pytest.approx(f1[name])
    assert computed["test/f1_macro"] == pytest.approx(sum(f1.values()) / 3)
    weighted = sum(f1[n] * support[n] for n in NAMES) / 10
    assert computed["test/f1_weighted"] == pytest.approx(weighted)
    assert computed["test/precision_macro"] == pytest.approx(sum(precision.values()) / 3)
    assert computed["test/recall_weighted"] == pytest.approx(7 / 10)


def test_report_is_laid_out_like_figure_6(computed):
    confusion = torch.tensor([[3, 1, 0], [1, 1, 1], [0, 0, 3]])
    table = per_class_table(computed, confusion, NAMES, "test")
    assert [table[n]["support"] for n in NAMES] == [4, 3, 3]
    lines = classification_report(computed, table, "test").splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["anger", "0.75", "0.75", "0.75", "4"]
    assert lines[3].split() == ["fear", "0.50", "0.33", "0.40", "3"]
    assert lines[6].split() == ["accuracy", "0.70", "10"]
    assert lines[7].split()[:2] == ["macro", "avg"] and lines[7].split()[-1] == "10"
    assert lines[8].split() == ["weighted", "avg", "0.68", "0.70", "0.68", "10"]
