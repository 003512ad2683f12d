"""Re-tests a finished run asks for in its config (`retests`): the same checkpoint scored
again with other overrides (one view, the deduplicated test split), so that one command
writes every figure of a results table row. Each runs `python -m mer_lightning.evaluate` in
its own process: a fresh Hydra composition, whatever the launcher of the run."""

import logging
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def run_retests(run_dir: Path, retests: Sequence[str]) -> list[str]:
    """Evaluate `run_dir` once per override set of `retests` (each a space-separated string);
    returns the ones that failed, after logging why (a failed re-test does not undo the run)."""
    failed = []
    for overrides in retests:
        command = [sys.executable, "-m", "mer_lightning.evaluate", str(run_dir)]
        command += shlex.split(str(overrides))
        log.info("re-test: %s", shlex.join(command[2:]))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            log.error("re-test %s failed (exit %d): %s", overrides, result.returncode, lines[-1])
            failed.append(str(overrides))
    return failed
