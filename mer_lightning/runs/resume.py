"""Continue a run that died: which checkpoint fit restarts from, and which runs are done.

A run killed at any point is continued by running it again in the same run dir:
`python -m mer_lightning <same overrides> hydra.run.dir=<its dir> resume=true`
(in a sweep: `-m <same sweep> hydra.sweep.dir=<its dir> resume=true`). Lightning's
`fit(ckpt_path=...)` then restores weights, optimizer, scheduler, loop counters and the
callbacks' state, the Timer's elapsed time included. A run whose dir already holds
metrics.json finished; resume=true returns its stored results instead of training again.
Without resume=true (or ckpt_path=last) a run refuses to start in a dir that holds another
run's results, so a reused hydra.run.dir or hydra.sweep.dir never overwrites them.
"""

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mer_lightning.core.errors import UserError
from mer_lightning.runs.config import run_identity
from mer_lightning.runs.results import FILE as METRICS_FILE
from mer_lightning.runs.results import RunResults, read_results

log = logging.getLogger(__name__)


def finished_results(cfg: DictConfig, run_dir: Path) -> RunResults | None:
    """With resume=true, the stored results of a run that already finished, else None."""
    path = run_dir / METRICS_FILE
    if not cfg.get("resume") or not path.is_file():
        return None
    finished = read_results(path)
    ours = run_identity(cfg)
    theirs = {key: getattr(finished, key) for key in ours}
    if theirs != ours:
        raise UserError(
            f"resume=true: {run_dir} holds a finished run of {_describe(theirs)} ({path}), "
            f"not of this run's {_describe(ours)}; its results are not this run's. Give this run "
            "its own dir (hydra.run.dir=..., or hydra.sweep.dir=... in a sweep)"
        )
    log.info("resume=true: %s already finished (metrics.json); not training it again", run_dir)
    return finished


def _describe(identity: dict[str, Any]) -> str:
    return f"model={identity['model']} seed={identity['seed']}"


def checkpoint_folders(trainer: L.Trainer) -> set[Path]:
    """The folders the trainer's ModelCheckpoint callbacks write to."""
    return {
        Path(callback.dirpath)
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint) and callback.dirpath
    }


def last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The newest last*.ckpt in the checkpoint folders of the trainer's ModelCheckpoints."""
    pattern = f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}*{ModelCheckpoint.FILE_EXTENSION}"
    found = [path for folder in checkpoint_folders(trainer) for path in folder.glob(pattern)]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def fit_checkpoint(cfg: DictConfig, trainer: L.Trainer) -> Path | None:
    """The checkpoint fit continues from: this run's last.ckpt (resume=true or ckpt_path=last),
    the file given as ckpt_path, or None to start from scratch."""
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") or ckpt_path == "last":
        path = last_checkpoint(trainer)
        how = "resume=true" if cfg.get("resume") else "ckpt_path=last"
        if path is None:
            folders = sorted(map(str, checkpoint_folders(trainer)))
            log.warning("%s: no last.ckpt in %s; training from the start", how, folders)
        else:
            log.info("%s: continuing from %s", how, path)
        return path
    return Path(ckpt_path).expanduser() if ckpt_path else None


def refuse_to_overwrite(cfg: DictConfig, trainer: L.Trainer, run_dir: Path) -> None:
    """Stop before training into a run dir that already holds a run's metrics or checkpoints.

    Hydra reuses a fixed hydra.run.dir or hydra.sweep.dir as given, and a continued Optuna
    search numbers its trials from 0 again, so without this check a new run would mix its
    checkpoints with the old run's and overwrite its metrics.json.
    """
    if cfg.get("resume") or cfg.get("ckpt_path") == "last" or rank_zero_only.rank != 0:
        return
    found = [run_dir / METRICS_FILE] if (run_dir / METRICS_FILE).is_file() else []
    found += sorted(p for folder in checkpoint_folders(trainer) for p in folder.glob("*.ckpt"))
    if found:
        raise UserError(
            f"the run dir {run_dir} already holds a run ({', '.join(map(str, found[:3]))}); "
            "training here would overwrite it. Continue that run with resume=true, or give "
            "this one its own dir: hydra.run.dir=... (hydra.sweep.dir=... in a sweep; a "
            "continued Optuna search keeps hydra.sweeper.storage and takes a new sweep dir)"
        )
