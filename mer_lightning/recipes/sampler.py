"""The Optuna sampler of `hparams_search=optuna`: TPE, seeded so that a continued study goes on.

A search continued from its storage (`hydra.sweeper.storage`) in a later call builds a new
sampler. A TPESampler with the same fixed seed would propose the first call's random start-up
trials once more, and spend hours training them to the same result. This one offsets the seed
by the number of the first trial it proposes (0 in a new study), so proposals stay repeatable
for a given study and are new in every call that continues it.
"""

import logging
from collections.abc import Sequence
from typing import Any

from optuna import Study
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)


class ContinuedTPESampler(BaseSampler):
    """TPE seeded with `seed` plus the number of its first trial; `options` go to TPESampler.

    Hydra builds the sampler before the study is loaded, so the TPESampler is made at the
    first trial, when the study's length is known.
    """

    def __init__(self, seed: int | None = None, **options: Any) -> None:
        self._seed = seed
        self._options = options
        self._tpe: TPESampler | None = None

    def _sampler(self, trial: FrozenTrial) -> TPESampler:
        if self._tpe is None:
            seed = None if self._seed is None else self._seed + trial.number
            log.info(
                "TPE seed %s: %s + %d trials already in the study", seed, self._seed, trial.number
            )
            self._tpe = TPESampler(seed=seed, **self._options)
        return self._tpe

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        if self._tpe is not None:
            self._tpe.reseed_rng()
