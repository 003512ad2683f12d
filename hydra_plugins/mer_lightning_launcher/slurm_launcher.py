"""hydra-submitit-launcher's SLURM launcher, made fit for a comparison sweep; three changes.

1. A job that SLURM ends without a result (scancel, its time limit, out of memory, a lost
   node) no longer stops the sweep. The plugin's launcher raises at the first such job, so
   Hydra never reached the comparison report and the other jobs' results went unread. Here
   every job is waited for; one that SLURM ended is written down as failed (`failure.json`
   in its job dir, saying how SLURM ended it and where its log is; a job cancelled before it
   started gets its job dir and Hydra's `.hydra/` files here), so the report lists it and the
   command exits with status 1 after the report, as for any failed job. So is an error
   raised in the job outside the task's own handling (submitit's time-limit signal, which
   comes `signal_delay_s` before the limit, or Hydra's job setup).
2. With `resume=true`, jobs whose dir already holds the finished run (`metrics.json` of the
   same model and seed) are not submitted again: only the unfinished ones queue, and they
   continue from their `last.ckpt` (`mer_lightning.runs.resume`).
3. sbatch refusing the jobs (a partition, account or resource the cluster does not have) or
   no sbatch on this machine is one line naming `hydra.launcher` and the reason, status 2.
"""

import contextlib
import copy
import io
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, _save_config, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


class EndedBySlurm(Exception):
    """A job that SLURM ended before it returned (the `type` of its failure.json)."""


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """`hydra/launcher=slurm`: one SLURM array task per sweep point; see the module docstring."""

    def job_config(self, overrides: list[str], num: int) -> tuple[DictConfig, Path]:
        """The composed config of one sweep point and its job dir, as Hydra's run_job makes
        them in the job (hydra.sweep.dir / hydra.sweep.subdir with hydra.job.num set)."""
        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.num = num
        job_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(job_dir.absolute())
        return config, job_dir

    def executor(self) -> Any:
        """A submitit SLURM executor with this launcher's parameters (as the plugin builds it)."""
        import submitit

        params = dict(self.params)
        folder = params.pop("submitit_folder")
        init = {f"{self._EXECUTOR}_max_num_timeout": params.pop("max_num_timeout")}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=folder, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{key if key in shared else f"{self._EXECUTOR}_{key}": v for key, v in params.items()}
        )
        return executor

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        """Submit the sweep points that still need a run as one SLURM array, wait for every
        one of them, and return a JobReturn per point, in order."""
        import submitit

        from mer_lightning.runs.console import print_user_error

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:  # as the plugin does
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        returns: dict[int, JobReturn] = {}
        pending = []  # (num, overrides, config, job dir) of the points to submit
        for num, overrides in enumerate(map(list, job_overrides), start=initial_job_idx):
            config, job_dir = self.job_config(overrides, num)
            log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
            finished = finished_return(config, job_dir)
            if finished is not None:
                log.info(f"\t#{num} finished before (resume=true): {job_dir}; not submitted")
                returns[num] = finished
            else:
                pending.append((num, overrides, config, job_dir))
        if pending:
            args = [
                (overrides, "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state())
                for num, overrides, _, _ in pending
            ]
            try:  # submitit prints sbatch's refusal itself; it is in the one line below
                with contextlib.redirect_stderr(io.StringIO()):
                    jobs = self.executor().map_array(self, *zip(*args, strict=True))
            except (submitit.core.utils.FailedJobError, FileNotFoundError) as error:
                lines = [line.removeprefix("sbatch: error: ") for line in str(error).splitlines()]
                reason = "; ".join(line for line in lines if line.strip()) or repr(error)
                print_user_error(
                    f"sbatch could not submit the sweep ({reason}). Check hydra.launcher "
                    "(partition, account, qos, cpus_per_task, mem_gb, gpus_per_node; see "
                    "them with --cfg hydra -p hydra.launcher) against `sinfo` of this cluster"
                )
                raise SystemExit(2) from None
            log.info(f"submitted SLURM jobs {', '.join(job.job_id for job in jobs)}")
            for (num, overrides, config, job_dir), job in zip(pending, jobs, strict=True):
                try:
                    returns[num] = raised_in_job(job.results()[0], job_dir)
                except (
                    submitit.core.utils.UncompletedJobError,
                    submitit.core.utils.FailedJobError,
                ):
                    returns[num] = ended_by_slurm(job, overrides, config, job_dir)
        return [returns[num] for num in sorted(returns)]


def raised_in_job(result: JobReturn, job_dir: Path) -> JobReturn:
    """The JobReturn of a job, with an error raised in the job outside the task's own
    handling (in Hydra's job setup, or submitit's time-limit signal) written down as its
    failure.json like any failed job, instead of stopping the sweep when Hydra reads it."""
    if result.status != JobStatus.FAILED:
        return result
    from mer_lightning.runs.failures import write_failure

    error = result._return_value
    log.error("job in %s raised %s: %s", job_dir, type(error).__name__, error)
    try:
        write_failure(job_dir, error)
    except OSError as write_error:
        log.error("could not write the failure.json of %s: %s", job_dir, write_error)
    result.status = JobStatus.COMPLETED  # written down like a failed task; the sweep goes on
    result.return_value = None
    return result


def finished_return(config: DictConfig, job_dir: Path) -> JobReturn | None:
    """With resume=true, the JobReturn of a sweep point whose job dir holds its finished run
    (what the job would return without training); None when it must run. A dir holding
    another run's metrics.json is left to the job, which records that error as its failure."""
    if not config.get("resume") or not (job_dir / "metrics.json").is_file():
        return None  # decided without importing the training stack
    from mer_lightning.core.errors import UserError
    from mer_lightning.runs.resume import finished_results

    task_cfg = task_config(config)
    try:
        results = finished_results(task_cfg, job_dir)
    except UserError:
        return None
    if results is None:
        return None
    job = JobReturn(
        overrides=list(config.hydra.overrides.task),
        cfg=task_cfg,
        hydra_cfg=OmegaConf.create({"hydra": config.hydra}),
        working_dir=str(Path.cwd()),
        task_name=str(config.hydra.job.name),
        status=JobStatus.COMPLETED,
    )
    job.return_value = results.metrics.get(task_cfg.monitor.metric)  # as the task returns it
    return job


def task_config(config: DictConfig) -> DictConfig:
    """The job's config without its `hydra` node (what the task function receives)."""
    task_cfg = copy.deepcopy(config)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def ended_by_slurm(job: Any, overrides: list[str], config: DictConfig, job_dir: Path) -> JobReturn:
    """Write down a job that SLURM ended without a result: failure.json in its job dir (made
    with Hydra's .hydra/ files if the job never started), read by the comparison report."""
    from mer_lightning.runs.failures import write_failure

    state = job.watcher.get_state(job.job_id, mode="force")
    error = EndedBySlurm(
        f"SLURM job {job.job_id} ended {state} before the run finished (logs: {job.paths.folder}); "
        "the sweep again with resume=true continues it (from its last.ckpt, if it has one)"
    )
    log.error("job %s: %s", config.hydra.job.num, error)
    hydra_dir = job_dir / str(config.hydra.output_subdir)
    try:
        if not (hydra_dir / "overrides.yaml").is_file():  # cancelled or failed before it started
            _save_config(task_config(config), "config.yaml", hydra_dir)
            _save_config(OmegaConf.create({"hydra": config.hydra}), "hydra.yaml", hydra_dir)
            _save_config(config.hydra.overrides.task, "overrides.yaml", hydra_dir)
        write_failure(job_dir, error)
    except OSError as write_error:  # e.g. a job dir name too long: the job's log says more
        log.error("job %s: could not write its failure.json: %s", config.hydra.job.num, write_error)
    result = JobReturn(
        overrides=list(overrides),
        cfg=task_config(config),
        hydra_cfg=OmegaConf.create({"hydra": config.hydra}),
        working_dir=str(Path.cwd()),
        task_name=str(config.hydra.job.name),
        status=JobStatus.COMPLETED,  # written down like a failed task; the sweep goes on
    )
    result.return_value = None
    return result
