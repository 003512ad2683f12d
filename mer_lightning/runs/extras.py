"""The optional features, the pip extra each needs, and the check made before Hydra starts.

The core install (`pip install -e .`) trains, tests, compares, evaluates, predicts and
exports to TorchScript. The hyperparameter search (`hparams_search=optuna`: Optuna 2 and
its SQLAlchemy < 2 pin) and the joblib and submitit launchers are extras, so that a plain
install does not pull their pins. Asked for without its extra, a feature would fail inside
Hydra as "Could not find 'hydra/sweeper/optuna'" or as an import error; the entry points
check the command line first and name the extra and the pip command instead (exit 2).
"""

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mer_lightning.core.errors import UserError


@dataclass(frozen=True)
class Extra:
    """A pip extra of pyproject.toml and the modules that tell whether it is installed."""

    name: str
    packages: str  # what it installs, as the message names it
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        """The modules of this extra that cannot be imported here."""
        return [module for module in self.modules if not _importable(module)]

    def message(self, what: str, missing: Sequence[str]) -> str:
        """The one line for `what` asked for without this extra: the extra and the fix."""
        return (
            f"{what} needs the [{self.name}] extra ({self.packages}; {', '.join(missing)} not "
            f'installed): pip install -e ".[{self.name}]" from the repository root'
        )


OPTUNA = Extra("search", "optuna", ("optuna",))  # reading stored studies needs optuna alone
SEARCH = Extra(
    "search", "hydra-optuna-sweeper, optuna", ("optuna", "hydra_plugins.hydra_optuna_sweeper")
)
JOBLIB = Extra(
    "launchers", "hydra-joblib-launcher", ("joblib", "hydra_plugins.hydra_joblib_launcher")
)
SUBMITIT = Extra(
    "launchers", "hydra-submitit-launcher", ("submitit", "hydra_plugins.hydra_submitit_launcher")
)

# (command-line override, as `group=option`, and the extra its option needs); a leading
# + or ++ is ignored. slurm and slurm_local extend the submitit plugin's submitit_slurm.
FEATURES: dict[str, Extra] = {
    "hparams_search=optuna": SEARCH,
    "hydra/sweeper=optuna": SEARCH,
    "hydra/launcher=joblib": JOBLIB,
    "hydra/launcher=submitit_local": SUBMITIT,
    "hydra/launcher=submitit_slurm": SUBMITIT,
    "hydra/launcher=slurm": SUBMITIT,
    "hydra/launcher=slurm_local": SUBMITIT,
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a half-removed module
        return False


def missing_extra_problems(overrides: Sequence[str]) -> list[str]:
    """One line per command-line override whose feature's extra is not installed."""
    found = []
    for override in overrides:
        key = re.sub(r"^\+{1,2}", "", override.strip())
        extra = FEATURES.get(key)
        if extra is None:
            continue
        missing = extra.missing()
        if missing:
            found.append(extra.message(key, missing))
    return found


def check_command_line(overrides: Sequence[str]) -> None:
    """Raise a UserError when the command line asks for a feature whose extra is missing."""
    found = missing_extra_problems(overrides)
    if found:
        raise UserError("\n".join(found) if len(found) > 1 else found[0])


def require(extra: Extra, what: str) -> None:
    """Raise a UserError when `what` (a command) cannot run for want of `extra`."""
    missing = extra.missing()
    if missing:
        raise UserError(extra.message(what, missing))
