"""Where the Hydra configs live, and composing the train config outside a Hydra run."""

import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from mer_lightning.core.models.build import model_label

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # mer_lightning/
# An installed wheel carries the configs inside the package; a source checkout keeps them
# at the top level (conf/), next to the package.
CONFIG_DIR = next(
    (p for p in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf") if p.is_dir()),
    _PACKAGE_DIR.parent / "conf",
)


def compose_run_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """conf/train.yaml with `overrides`, as `python -m mer_lightning` would compose it, with
    `${hydra:runtime.output_dir}` set to output_dir: for benchmarks and tests, which build
    runs in-process through `mer_lightning.train` without a Hydra launch."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    output_dir.mkdir(parents=True, exist_ok=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


# Config keys and import paths that moved when recipes left the LightningModule; runs
# trained before name the old ones in their overrides.
MOVED_KEYS = {
    "module.mixup_alpha": "data.mixup_alpha",
    "module.cutmix_alpha": "data.cutmix_alpha",
    "module.distill": "callbacks.distill",
}
MOVED_TARGETS = {
    "mer_lightning.sam.SAM": "mer_lightning.recipes.sam.SAM",
    "mer_lightning.sampler.": "mer_lightning.recipes.sampler.",
}


def moved_key_message(old: str) -> str:
    """One line telling a user of a moved key where it went."""
    return f"{old} moved to {MOVED_KEYS[old]}: write {MOVED_KEYS[old]}=... instead"


def moved_override(override: str) -> str | None:
    """The moved key an override sets (`module.mixup_alpha=0.2` -> `module.mixup_alpha`),
    or None when it sets none."""
    key = override.lstrip("+~").split("=", 1)[0]
    return next((old for old in MOVED_KEYS if key == old or key.startswith(old + ".")), None)


def current_override(override: str) -> str:
    """An override of a run trained before keys and classes moved, in today's terms."""
    prefix = override[: len(override) - len(override.lstrip("+~"))]
    key, sep, value = override[len(prefix) :].partition("=")
    old = moved_override(override)
    if old is not None:
        key = MOVED_KEYS[old] + key[len(old) :]
    for before, after in MOVED_TARGETS.items():
        value = value.replace(before, after)
    return prefix + key + sep + value


def recompose_run_config(run_dir: Path, overrides: list[str], output_dir: Path) -> DictConfig:
    """The config a finished run was trained with (its `.hydra/overrides.yaml`) plus
    `overrides`: for tools that test or reuse a run's checkpoint on its own data."""
    trained_with = [
        current_override(str(line))
        for line in OmegaConf.load(Path(run_dir) / ".hydra" / "overrides.yaml")
    ]
    return compose_run_config([*trained_with, *overrides, "print_config=false"], output_dir)


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """The model name and seed that a run's metrics.json records: they name the run in
    reports, and resume=true checks them before taking a finished run's results as its own."""
    return {"model": model_label(cfg.model), "seed": cfg.get("seed")}


AS_TRAINED = "default"  # folder name of a re-test (evaluate/, ensemble/) without overrides


def output_name(overrides: list[str]) -> str:
    """A folder name for the overrides: `data.dedup=true` stays as it is, slashes go."""
    return re.sub(r"[^\w.=,+-]", "_", ",".join(overrides)) if overrides else AS_TRAINED
