"""Teachers named by configuration, trained once into a cache and reused by every student.

A distilled recipe says which run teaches it (`callbacks.distill.teacher`: the teacher's
experiment, model, seed and any extra overrides) instead of pointing at a checkpoint. The
teacher's run dir is `<cache>/<hash of its composed config>/`: a student whose teacher has
finished there reuses it; otherwise the teacher trains first, with `resume=true`, so that one
interrupted before continues from its last.ckpt. A file lock per teacher makes students that
start together (a parallel sweep) train it once: the first trains, the others wait and reuse.
"""

import fcntl
import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mer_lightning.core.errors import UserError

log = logging.getLogger(__name__)

KEY = "callbacks.distill.teacher"
RESULTS_FILE = "metrics.json"
LOG_FILE = "teacher.log"  # the teacher's terminal output, beside its run dir
SPEC_KEYS = ("experiment", "model", "seed", "overrides")
# Config keys added after teachers were first cached, each with the value that does what its
# absence did: at that value a key leaves a teacher's hash, so its cache entry, unchanged.
# Add a new key here when it would otherwise make every cached teacher train again.
NEUTRAL_ADDED_KEYS = {"module.scheduler_interval": "epoch"}


def teacher_overrides(spec: Mapping[str, Any], data_root: str) -> list[str]:
    """The command-line overrides that make the teacher of `spec` on the student's dataset."""
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown or not spec.get("model"):
        raise UserError(
            f"{KEY}={dict(spec)} must name the teacher's model (and may give experiment, seed "
            "and overrides), e.g. {experiment: best, model: resnet18, seed: 1}"
        )
    overrides = [f"model={spec['model']}", f"data.root={data_root}"]
    if spec.get("experiment"):
        overrides.append(f"experiment={spec['experiment']}")
    if spec.get("seed") is not None:
        overrides.append(f"seed={spec['seed']}")
    return [*overrides, *[str(o) for o in spec.get("overrides") or ()]]


def _command(overrides: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "mer_lightning", *overrides]


def config_hash(overrides: Sequence[str]) -> str:
    """12 hex digits of the teacher's composed config (as `--cfg job --resolve` prints it,
    with a fixed run dir, less NEUTRAL_ADDED_KEYS at their neutral value): a teacher whose
    recipe or data changes gets a new cache entry."""
    result = subprocess.run(
        [*_command(overrides), "hydra.run.dir=teacher", "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise UserError(f"{KEY}: the teacher's config does not compose: {lines[-1]}")
    config = OmegaConf.create(result.stdout)
    for key, neutral in NEUTRAL_ADDED_KEYS.items():
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(config, parent) if parent else config
        if node is not None and leaf in node and node[leaf] == neutral:
            del node[leaf]
    return hashlib.sha256(OmegaConf.to_yaml(config).encode()).hexdigest()[:12]


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def best_checkpoint(run_dir: Path) -> Path:
    """The best checkpoint a finished teacher run names in its metrics.json."""
    results = json.loads((run_dir / RESULTS_FILE).read_text())
    return run_dir / results["best_checkpoint"]


def ensure_teacher(spec: Mapping[str, Any], data_root: str, cache: Path) -> Path:
    """The best checkpoint of the teacher of `spec`, training or resuming it first when its
    cache entry holds no finished run."""
    overrides = teacher_overrides(spec, data_root)
    run_dir = cache / config_hash(overrides)
    with _locked(run_dir.with_suffix(".lock")):
        if not (run_dir / RESULTS_FILE).is_file():
            log.info("training the teacher %s into %s", " ".join(overrides), run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            with (run_dir / LOG_FILE).open("a") as output:
                status = subprocess.run(
                    [*_command(overrides), f"hydra.run.dir={run_dir}", "resume=true"],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    check=False,
                ).returncode
            if status != 0 or not (run_dir / RESULTS_FILE).is_file():
                raise UserError(
                    f"{KEY}: the teacher ({' '.join(overrides)}) failed with exit status "
                    f"{status}; see {run_dir / LOG_FILE}. Fix its cause, then run again: the "
                    "teacher resumes from its last.ckpt"
                )
        else:
            log.info("reusing the teacher in %s", run_dir)
    return best_checkpoint(run_dir)
