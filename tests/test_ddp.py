"""trainer=ddp from the Hydra entry point: two CPU processes (gloo), one run."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mer_lightning.runs.build import build, train_accuracy
from tests.data_faults import copy_dataset
from tests.helpers import compose_config, fast_overrides

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_run_over_the_whole_test_set(synthetic_root, tmp_path):
    # 43 test images: two processes get shards of 22 and 21, none repeated to even them out.
    root = copy_dataset(synthetic_root, tmp_path / "data" / "Micro_Expressions")
    shutil.copyfile(root / "test/fear/fear1.jpg", root / "test/fear/fear_extra.jpg")
    overrides = fast_overrides("cnn1", root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning", "trainer=ddp", "trainer.devices=2", *overrides],
        cwd=tmp_path,  # the run dir goes to tmp_path/outputs/runs/<date>/<time>_cnn1
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr

    run_dirs = [p for p in (tmp_path / "outputs" / "runs").glob("*/*") if p.is_dir()]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert list(tmp_path.rglob("metrics.json")) == [run_dir / "metrics.json"]
    assert (run_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran in the same run dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sum(row["support"] for row in metrics["per_class"].values()) == 7 * 6 + 1
    assert metrics["train_images_seen"] == 92  # 91 images, sharded over 2 processes, padded

    # One process, same best checkpoint: the same confusion matrix and accuracies, so the
    # DDP test saw each test image exactly once and its metrics were synced across processes.
    cfg = compose_config(overrides, tmp_path / "check")
    datamodule, module, trainer = build(cfg)
    best = str(run_dir / metrics["best_checkpoint"])
    single = trainer.test(module, datamodule=datamodule, ckpt_path=best)[0]
    with (run_dir / "confusion_matrix.csv").open() as handle:
        ddp_confusion = [[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]]
    assert torch.equal(module.confusion_matrix, torch.tensor(ddp_confusion))
    assert metrics["test_acc"] == pytest.approx(single["test/acc"])
    assert metrics["test_f1_macro"] == pytest.approx(single["test/f1_macro"])
    assert metrics["train_acc"] == pytest.approx(train_accuracy(trainer, module, datamodule, best))
