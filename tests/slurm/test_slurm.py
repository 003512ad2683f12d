"""Sweeps and DDP on a real SLURM cluster (hydra/launcher=slurm_local), end to end.

`python -m mer_lightning -m hydra/launcher=slurm_local ...` runs as a user would run it, and
SLURM runs its jobs: sbatch, srun, scancel and sacct are the real ones, on the one-node
cluster of scripts/slurm/start.sh. The models are the paper's, narrow (tiny_* configs of
tests/test_sweep.py), on the synthetic dataset, so that the whole file takes a few minutes.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mer_lightning.compare.jobs import COMPLETED, FAILED, read_jobs
from tests.data_faults import copy_dataset
from tests.helpers import CLASSES, fast_overrides
from tests.resume_helpers import PROGRESS_FILE, SLOW
from tests.test_sweep import sweep_args, table

pytestmark = pytest.mark.slurm
MODELS = "model=tiny_cnn1,tiny_cnn2,tiny_resnet18"
TIMEOUT = 420  # seconds a sweep may take before the test gives up (it cancels its jobs)


def slurm_args(job_name: str, *overrides: str) -> list[str]:
    """A multirun on the local cluster under the test's own job name."""
    return ["-m", "hydra/launcher=slurm_local", f"hydra.launcher.name={job_name}", *overrides]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -m mer_lightning args` until it ends (it waits for its SLURM jobs)."""
    return subprocess.run(
        [sys.executable, "-m", "mer_lightning", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def sacct(job_id: str, fields: str = "JobID,State") -> list[list[str]]:
    """sacct's rows for a job (array tasks and their steps), split into fields."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-o", fields, "-j", job_id],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [line.split("|") for line in out.splitlines() if line]


def submitted(sweep_dir: Path) -> list[str]:
    """The SLURM ids of the submissions of a sweep, oldest first: an array of its points, or
    a plain job for one point (submitit makes a folder .submitit/<id> with each sbatch script).
    """
    folders = (sweep_dir / ".submitit").glob("*/*_submission.sh")
    return sorted((p.parent.name for p in folders if p.parent.name.isdigit()), key=int)


def test_three_model_sweep_survives_a_cancelled_job_and_resume_reruns_only_it(
    extra_conf, synthetic_root, tmp_path, job_name
):
    sweep_dir = tmp_path / "sweep"
    args = slurm_args(
        job_name,
        MODELS,
        *(a for a in sweep_args(extra_conf, synthetic_root, sweep_dir) if "batch_size=" not in a),
        "data.batch_size=16",  # 6 steps an epoch
        "trainer.max_epochs=2",
        "callbacks.last_checkpoint.every_n_train_steps=1",  # last.ckpt after every step
        "callbacks.last_checkpoint.train_time_interval=null",
        SLOW % 0.3,  # paced, so the cancel lands while tiny_cnn1 trains
    )
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "mer_lightning", *args],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # scancel tiny_cnn1 (array task 0) once its last.ckpt holds two steps
        progress = sweep_dir / "0_model=tiny_cnn1" / PROGRESS_FILE
        deadline = time.monotonic() + TIMEOUT
        while not (progress.is_file() and json.loads(progress.read_text())["global_step"] >= 2):
            assert sweep.poll() is None, (
                f"sweep ended before the cancel:\n{log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, "tiny_cnn1 never reached step 2"
            time.sleep(0.05)
        (array,) = submitted(sweep_dir)
        subprocess.run(["scancel", f"{array}_0"], check=True, timeout=30)
        assert sweep.wait(timeout=TIMEOUT) == 1, log.read_text()[-3000:]  # a job failed
    finally:
        if sweep.poll() is None:
            sweep.send_signal(signal.SIGINT)
            sweep.wait(timeout=60)

    # sacct lists the three jobs: tiny_cnn1 cancelled, the other two completed
    states = {row[0]: row[1] for row in sacct(array) if "." not in row[0]}
    assert sorted(states) == [f"{array}_0", f"{array}_1", f"{array}_2"]
    assert states[f"{array}_0"].startswith("CANCELLED")
    assert states[f"{array}_1"] == states[f"{array}_2"] == "COMPLETED"
    # each job wrote its run dir and its SLURM log into the sweep dir; the report was written
    assert (sweep_dir / f".submitit/{array}_1/{array}_1_0_log.out").is_file()
    jobs = {job.dir.name: job for job in read_jobs(sweep_dir)}
    assert sorted(jobs) == ["0_model=tiny_cnn1", "1_model=tiny_cnn2", "2_model=tiny_resnet18"]
    cancelled = jobs["0_model=tiny_cnn1"]
    assert cancelled.status == FAILED
    assert f"SLURM job {array}_0 ended CANCELLED" in cancelled.error
    assert (cancelled.dir / "checkpoints" / "last.ckpt").is_file()
    assert [jobs[name].status for name in ("1_model=tiny_cnn2", "2_model=tiny_resnet18")] == [
        COMPLETED,
        COMPLETED,
    ]
    report = (sweep_dir / "comparison.md").read_text()
    assert "CANCELLED" in report

    # resume=true: only tiny_cnn1 is submitted again, and it continues from its last.ckpt
    resumed = run([*args, "resume=true"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, again = submitted(sweep_dir)
    assert first == array
    assert [row[0] for row in sacct(again) if "." not in row[0]] == [again]  # one job
    jobs = {job.dir.name: job for job in read_jobs(sweep_dir)}
    assert {job.status for job in jobs.values()} == {COMPLETED}
    metrics = json.loads((sweep_dir / "0_model=tiny_cnn1" / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("last.ckpt")
    assert metrics["epochs"] == 2
    assert table((sweep_dir / "comparison.md").read_text())[""] == ["cnn1", "cnn2", "resnet18"]


def test_ddp_run_over_two_slurm_tasks_sees_each_test_image_once(synthetic_root, tmp_path, job_name):
    # 43 test images: the two ranks get shards of 22 and 21, none repeated to even them out
    root = copy_dataset(synthetic_root, tmp_path / "data" / "Micro_Expressions")
    shutil.copyfile(root / "test/fear/fear1.jpg", root / "test/fear/fear_extra.jpg")
    sweep_dir = tmp_path / "sweep"
    args = slurm_args(
        job_name,
        "trainer=ddp",
        "trainer.devices=2",  # two SLURM tasks (hydra.launcher.tasks_per_node), one core each
        *fast_overrides("cnn1", root),
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweep.subdir=ddp",  # a one-job sweep names its dir by all its overrides
        "callbacks.model_summary=null",
    )
    result = run(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    (job,) = submitted(sweep_dir)  # one sweep point: a plain job, not an array
    steps = {row[0]: row[1] for row in sacct(job, "JobID,NTasks")}
    assert steps[f"{job}.0"] == "2"  # one srun step of two tasks: the two DDP processes
    logs = [sweep_dir / f".submitit/{job}/{job}_{rank}_log.err" for rank in (0, 1)]
    for rank, path in enumerate(logs):  # each task is one rank of two, as SLURM numbered it;
        text = path.read_text()  # no task started processes of its own (one init line each)
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in text
        assert text.count("Initializing distributed") == 1

    (metrics_file,) = sweep_dir.rglob("metrics.json")
    run_dir = metrics_file.parent
    metrics = json.loads(metrics_file.read_text())
    support = {name: row["support"] for name, row in metrics["per_class"].items()}
    images = {name: len(list((root / "test" / name).iterdir())) for name in CLASSES}
    assert support == images  # what one process sees: every test image once
    assert metrics["train_images_seen"] == 92  # 91 images, sharded over 2 ranks, padded
    # events.out.tfevents.<time>.<host>.<pid>.<n>: one process (rank 0) wrote TensorBoard
    assert len({path.name.split(".")[-2] for path in run_dir.rglob("events.out.tfevents.*")}) == 1


def test_a_partition_the_cluster_lacks_is_one_line_and_status_2(tmp_path, job_name):
    result = run(
        slurm_args(job_name, "hydra.launcher.partition=no_such_partition", "model=cnn1"),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: sbatch could not submit the sweep" in result.stdout + result.stderr
    assert "invalid partition" in (result.stdout + result.stderr).lower()
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.ckpt"))
