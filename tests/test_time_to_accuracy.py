"""Time to accuracy: the test split scored after each epoch (choosing nothing), and the
epochs and seconds each model needs to reach the paper's test accuracy."""

import pytest

from mer_lightning.compare.jobs import COMPLETED, Job
from mer_lightning.compare.summary import group_jobs
from mer_lightning.compare.table import table_rows
from mer_lightning.runs.results import RunResults
from mer_lightning.runs.validate import problems
from mer_lightning.train import run
from tests.helpers import compose_config, fast_overrides


@pytest.mark.slow
def test_each_epoch_is_tested_and_the_best_epochs_score_is_the_final_test(synthetic_root, tmp_path):
    overrides = fast_overrides(
        "cnn1", synthetic_root, "trainer.max_epochs=3", "callbacks.epoch_test.every_n_epochs=1"
    )
    results = run(compose_config(overrides, tmp_path))
    assert [row["epoch"] for row in results.history] == [0.0, 1.0, 2.0]
    assert all("epoch_test/acc" in row and "fit_seconds" in row for row in results.history)
    seconds = [row["fit_seconds"] for row in results.history]
    assert seconds == sorted(seconds) and seconds[-1] <= results.fit_seconds
    best_epoch = int(results.best_checkpoint.removeprefix("checkpoints/epoch")[:3])
    assert results.history[best_epoch]["epoch_test/acc"] == pytest.approx(results.test_acc)


def test_the_per_epoch_test_never_picks_a_checkpoint(tmp_path):
    cfg = compose_config(["monitor.metric=epoch_test/acc"], tmp_path)
    assert any("monitor.metric=epoch_test/acc must be a val/ or train/" in p for p in problems(cfg))


def job(num: int, model: str, seed: int, val: list[float], test: list[float]) -> Job:
    history = [
        {"epoch": float(e), "val/acc": v, "epoch_test/acc": t, "fit_seconds": 10.0 * (e + 1)}
        for e, (v, t) in enumerate(zip(val, test, strict=True))
    ]
    results = RunResults(
        kind="train", model=model, seed=seed, classes=["a"], metrics={}, data={}, history=history
    )
    overrides = {"model": model, "seed": str(seed)}
    return Job(num, None, overrides, COMPLETED, model=model, metrics=results)


def test_the_report_counts_epochs_and_seconds_to_the_papers_accuracy():
    jobs = [  # paper test accuracy: cnn1 82.53 %, cnn2 81.83 %
        job(0, "cnn1", 1, val=[0.80, 0.83, 0.85], test=[0.79, 0.82, 0.83]),
        job(1, "cnn1", 2, val=[0.83, 0.84, 0.85], test=[0.80, 0.83, 0.84]),
        job(2, "cnn2", 1, val=[0.70, 0.75, 0.80], test=[0.70, 0.76, 0.81]),
    ]
    rows = {row.name: row.cells for row in table_rows(group_jobs(jobs), [])}
    assert rows["Epochs to paper (val)"] == ["1.5 ± 0.7", "not reached (0 of 1)"]
    assert rows["Seconds to paper (val)"] == ["15 ± 7", "—"]
    assert rows["Epochs to paper (test)"] == ["2.5 ± 0.7", "not reached (0 of 1)"]
