"""Kill a real `python -m mer_lightning` mid-epoch, for the resume tests.

`SlowSteps` is added to the killed run with `+callbacks.slow=...`: it paces training (so the
kill lands inside an epoch, not after training ended) and writes the step it reached to
progress.json in the run dir, which the test polls to choose the moment of the kill.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L

PROGRESS_FILE = "progress.json"
SLOW = "+callbacks.slow={_target_:tests.resume_helpers.SlowSteps,seconds:%s}"


class SlowSteps(L.Callback):
    """Sleep after every training step and record the global step reached."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)
        record = {"global_step": trainer.global_step, "epoch": trainer.current_epoch}
        path = Path(trainer.default_root_dir) / PROGRESS_FILE
        path.with_suffix(".tmp").write_text(json.dumps(record))
        path.with_suffix(".tmp").replace(path)


def start(args: list[str], log: Path) -> subprocess.Popen:
    """`python -m mer_lightning *args` in the background, output into `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mer_lightning", *args], stdout=out, stderr=subprocess.STDOUT
        )


def kill_at_step(
    process: subprocess.Popen, run_dir: Path, step: int, log: Path, job: str | None = None
) -> dict:
    """SIGKILL `process` once the progress file in `run_dir` (or in its job dir matching the
    glob `job`, for a sweep) shows `step`; returns the last record read."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run ended before step {step}:\n{log.read_text()[-3000:]}")
        found = sorted(run_dir.glob(f"{job}/{PROGRESS_FILE}")) if job else [run_dir / PROGRESS_FILE]
        if found and found[0].is_file():
            record = json.loads(found[0].read_text())
            if record["global_step"] >= step:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return record
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"step {step} not reached in time:\n{log.read_text()[-3000:]}")


def run(args: list[str], log: Path) -> subprocess.CompletedProcess:
    """`python -m mer_lightning *args` to the end; fails the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result
