"""Hydra's basic sweeper, made fit for comparing models; two changes.

1. Keeps going when some sweep points do not compose. BasicSweeper composes every job's
   config before launching and aborts the whole sweep at the first bad one
   (`model=cnn1,bogus` runs nothing). This one drops the jobs that fail, records them in the
   multirun dir (`failed_to_compose.json`, read by the comparison report) and launches the
   rest. When no job of a batch composes, Hydra's own error is raised as before.
2. Names job dirs by what the sweep varies. Hydra's `override_dirname` lists every
   override, so `-m model=cnn1,cnn2` with ten fixed overrides makes dir names past the
   255-character limit, and TensorBoard run names nobody can read. Overrides that are the
   same in every job are added to `hydra.job.config.override_dirname.exclude_keys`:
   `0_model=cnn1,seed=1`. A sweep of one job varies nothing, so its job keeps every override
   in its name as in Hydra (`0_model=cnn2,seed=1`), not a bare `0_` that the next one-job
   sweep into the same sweep dir would reuse.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins import basic_sweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from mer_lightning.runs.failures import append_compose_failure, first_line

log = logging.getLogger(__name__)
EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"


class TolerantSweeper(basic_sweeper.BasicSweeper):
    """Cartesian-product sweeper (same syntax as `basic`); see the module docstring."""

    def constant_keys(self) -> list[str]:
        """Keys of the overrides that have the same value in every job of a sweep of several."""
        jobs = [list(job) for batch in self.overrides for job in batch]
        if len(jobs) < 2:
            return []
        common = set(jobs[0]).intersection(*jobs[1:])
        parser = OverridesParser.create()
        return sorted(override.key_or_group for override in parser.parse_overrides(list(common)))

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        """The next batch, without the jobs whose config fails to compose."""
        batch = super().get_job_batch()
        configured = list(self.config.hydra.job.config.override_dirname.exclude_keys)
        excluded = ",".join(f"'{key}'" for key in sorted({*configured, *self.constant_keys()}))
        composable, first_error = [], None
        for overrides in batch:
            job = [*overrides, f"{EXCLUDE_KEYS}=[{excluded}]"]
            try:
                self.hydra_context.config_loader.load_sweep_config(self.config, job)
            except HydraException as error:
                first_error = first_error or error
                log.error("Skipping job %s: %s", " ".join(overrides), first_line(error))
                append_compose_failure(Path(self.config.hydra.sweep.dir), overrides, error)
            else:
                composable.append(job)
        if not composable and first_error is not None:
            raise first_error
        return composable
