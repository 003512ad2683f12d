"""Fixtures of the tests marked `slurm`: a real SLURM cluster (munged, slurmctld, slurmd and
slurmdbd on this machine, started by `bash scripts/slurm/start.sh`), or a skip that says why.

No fixture starts the cluster: CI's `.ci/run` starts it before pytest and stops it at exit.
"""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.test_sweep import extra_conf  # noqa: F401  (tiny model configs, for hydra.searchpath)

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("MER_SLURM_DIR", "/var/lib/mer-lightning-slurm"))
START = "bash scripts/slurm/start.sh"


def _not_up(why: str) -> str:
    """The skip reason: what is missing, why start.sh failed if it did, and the fix."""
    error = STATE / "start-error"
    started = f"; start.sh failed: {error.read_text().strip()}" if error.is_file() else ""
    return f"no local SLURM cluster ({why}{started}); start one with `{START}` (as root)"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The name of the idle node of a running SLURM cluster with accounting (`sacct`, which
    submitit reads to learn how a job ended); skips the test with the reason when there is none.
    """
    for command in ("sinfo", "sbatch", "sacct", "scancel"):
        if shutil.which(command) is None:
            pytest.skip(_not_up(f"`{command}` not found: slurm-wlm is not installed"))
    info = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=30
    )
    if info.returncode != 0 or not info.stdout.strip():
        pytest.skip(_not_up(f"sinfo: {(info.stderr or info.stdout).strip() or 'no nodes'}"))
    node, state = info.stdout.split()[:2]
    if state not in ("idle", "mixed"):
        pytest.skip(_not_up(f"node {node} is {state}, not idle"))
    accounting = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True, timeout=30)
    if accounting.returncode != 0:
        pytest.skip(_not_up(f"sacct: {accounting.stderr.strip()}"))
    return node


@pytest.fixture
def job_name(slurm_cluster, monkeypatch):
    """A SLURM job name of this test's own (hydra.launcher.name); its jobs are cancelled at
    the end, so that a failed test leaves nothing queued on the cluster."""
    name = f"mer_test_{uuid.uuid4().hex[:8]}"
    # sbatch passes the environment on: jobs import this checkout and its tests' callbacks,
    # on one torch thread each (a job has one core)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield name
    subprocess.run(["scancel", f"--name={name}"], capture_output=True, timeout=30)
