"""Continue a run that died: which checkpoint fit restarts from, and which runs are done.

A run killed at any point is continued by running it again in the same run dir:
`python -m mer_lightning <same overrides> hydra.run.dir=<its dir> resume=true`
(in a sweep: `-m <same sweep> hydra.sweep.dir=<its dir> resume=true`). Lightning's
`fit(ckpt_path=...)` then restores weights, optimizer, scheduler, loop counters and the
callbacks' state, the Timer's elapsed time included. A run whose dir already holds
metrics.json finished; resume=true returns its stored results instead of training again.
"""

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def finished_summary(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """With resume=true, the stored metrics.json of a run that already finished, else None."""
    path = run_dir / METRICS_FILE
    if not cfg.get("resume") or not path.is_file():
        return None
    log.info("resume=true: %s already finished (metrics.json); not training it again", run_dir)
    return json.loads(path.read_text())


def last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The newest last*.ckpt in the checkpoint folders of the trainer's ModelCheckpoints."""
    found = [
        path
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint) and callback.dirpath
        for path in Path(callback.dirpath).glob(
            f"{callback.CHECKPOINT_NAME_LAST}*{callback.FILE_EXTENSION}"
        )
    ]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def fit_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> Path | None:
    """The checkpoint fit continues from: this run's last.ckpt (resume=true or ckpt_path=last),
    the file given as ckpt_path, or None to start from scratch."""
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") or ckpt_path == "last":
        path = last_checkpoint(trainer)
        how = "resume=true" if cfg.get("resume") else "ckpt_path=last"
        if path is None:
            folders = sorted({str(cb.dirpath) for cb in trainer.checkpoint_callbacks})
            log.warning("%s: no last.ckpt in %s; training from the start", how, folders)
        else:
            log.info("%s: continuing from %s", how, path)
        return path
    return Path(ckpt_path).expanduser() if ckpt_path else None
