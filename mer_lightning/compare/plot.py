"""comparison.png: test accuracy against generation time, one labelled point per model."""

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mer_lightning.compare.paper import paper_figure  # noqa: E402
from mer_lightning.compare.summary import Group  # noqa: E402


def comparison_figure(groups: Sequence[Group], title: str):
    """Test (filled) and train (hollow) accuracy in % against generation seconds (fit
    seconds, plus a distilled model's teachers').

    With several runs per model the points are means and the bars one std on both axes.
    A dashed line in a model's colour marks the paper's test accuracy for it (the paper's fit
    times, on other hardware, are not comparable). Models without a completed run are left
    out (the table lists them).
    """
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drew_paper = False
    for i, group in enumerate(g for g in groups if g.completed):
        seconds, color = group.generation_seconds, colors[i % len(colors)]
        for name, filled, marker in (("test_acc", True, "o"), ("train_acc", False, "s")):
            acc = group.stat(name)
            if acc is None or seconds is None:
                continue
            ax.errorbar(
                seconds.mean,
                100 * acc.mean,
                xerr=seconds.std,
                yerr=None if acc.std is None else 100 * acc.std,
                fmt=marker,
                color=color,
                markerfacecolor=color if filled else "none",
                markersize=9,
                capsize=4,
            )
        paper_test = paper_figure(group.model, "test_acc")
        if paper_test is not None:
            ax.axhline(100 * paper_test, color=color, linestyle="--", alpha=0.6)
            drew_paper = True
        test, train = group.stat("test_acc"), group.stat("train_acc")
        if test is not None and train is not None and seconds is not None:
            x, y = [seconds.mean] * 2, [100 * test.mean, 100 * train.mean]
            ax.plot(x, y, ":", color=color, alpha=0.6)  # pairs a model's two points
        if test is not None and seconds is not None:
            ax.annotate(
                group.label,
                (seconds.mean, 100 * test.mean),
                textcoords="offset points",
                xytext=(8, -14),
                color=color,
            )
    ax.plot([], [], "o", color="gray", label="test accuracy")
    ax.plot([], [], "s", color="gray", markerfacecolor="none", label="train accuracy")
    if drew_paper:
        ax.plot([], [], "--", color="gray", label="paper's test accuracy")
    ax.set_xlabel("generation time: fit seconds (a distilled model's include its teachers')")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.margins(0.15)
    fig.tight_layout()
    return fig
