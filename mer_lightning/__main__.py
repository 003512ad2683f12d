"""`python -m mer_lightning [overrides]` (or `mer-train`): fit, then test, one run per Hydra job.

In a multirun (`-m`, or `experiment=compare`) a job that raises is written down
(`failure.json` in its job dir) and returns, so that the other jobs still run and the
comparison report at the end lists it as failed. A single run fails the process: a user
mistake with a clean message and exit status 2, anything else with its traceback. A user
mistake is also one that Hydra's `instantiate` wrapped (a model that rejects its config
values) and a disk that filled while the run wrote its files.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mer_lightning.core.errors import UserError
from mer_lightning.runs.config import CONFIG_DIR, moved_key_message, moved_override
from mer_lightning.runs.console import exit_on_user_error, print_user_error, user_error_of
from mer_lightning.runs.extras import check_command_line
from mer_lightning.runs.failures import write_failure

log = logging.getLogger(__name__)
# Strategies whose extra processes Lightning starts by re-running the command line.
RELAUNCHING_STRATEGIES = (
    "ddp",
    "ddp_find_unused_parameters_true",
    "ddp_find_unused_parameters_false",
)


def check_no_relaunch_in_multirun(cfg: DictConfig) -> None:
    """Refuse local DDP inside a multirun: each extra process would re-run the whole sweep.

    Lightning starts DDP processes 2..N by re-running `sys.argv`, which in a multirun is the
    sweep itself. Under SLURM (or torchrun) the processes exist already and nothing is re-run.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    trainer = cfg.trainer
    if str(trainer.get("strategy")) not in RELAUNCHING_STRATEGIES or trainer.get("devices") == 1:
        return
    if SLURMEnvironment.detect() or TorchElasticEnvironment.detect():
        return
    raise UserError(
        f"trainer.strategy={trainer.strategy} in a local multirun: Lightning would start the "
        "extra DDP processes by re-running the whole sweep. Run DDP experiments one at a time "
        "(without -m), or sweep on SLURM with hydra/launcher=slurm, where SLURM starts them"
    )


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def task(cfg: DictConfig) -> float | None:
    """Run the train task; returns the monitored metric for Hydra sweepers."""
    import torch

    from mer_lightning.train import run

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # joblib's workers get OMP_NUM_THREADS = cores // n_jobs, which torch follows.
    log.info("torch threads at job start: %d", torch.get_num_threads())
    try:
        if multirun:
            check_no_relaunch_in_multirun(cfg)
        summary = run(cfg)
    except Exception as error:
        mistake = user_error_of(error, where=f"the files of {hydra_cfg.runtime.output_dir}")
        if not multirun:
            if mistake is not None:
                print_user_error(str(mistake))
                sys.exit(2)
            raise
        record = write_failure(Path(hydra_cfg.runtime.output_dir), mistake or error)
        if mistake is not None:
            print_user_error(str(mistake))
        else:
            log.error("job %s failed:\n%s", hydra_cfg.job.num, record["traceback"])
        return None
    return summary.metrics.get(cfg.monitor.metric)


def main() -> None:
    """`mer-train` and `python -m mer_lightning`: refuse a feature whose pip extra is not
    installed (hparams_search=optuna, hydra/launcher=joblib, ...) before Hydra composes
    anything, then run the Hydra app."""
    with exit_on_user_error():
        check_command_line(sys.argv[1:])
        check_moved_keys(sys.argv[1:])
    task()


def check_moved_keys(overrides: list[str]) -> None:
    """Refuse a key that moved (`module.mixup_alpha=0.2`), naming where it went, before Hydra
    answers with a traceback (or, given with `+`, silently adds a key nothing reads)."""
    moved = [moved_key_message(old) for o in overrides if (old := moved_override(o))]
    if moved:
        raise UserError(moved[0] if len(moved) == 1 else "\n".join(moved))


if __name__ == "__main__":
    main()
