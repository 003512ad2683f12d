"""Build an architecture from its config, the same way for training and for a checkpoint."""

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mer_lightning.core.errors import UserError

# Keys of a conf/model/*.yaml file that describe the model but are not constructor arguments.
_DESCRIPTIVE_KEYS = ("name",)
# Variant switches left out of the stored config while off, so that checkpoints written
# before a switch existed still match the net they name.
_OFF_BY_DEFAULT = {"norm": None}


def net_config(model_cfg: DictConfig | dict, num_classes: int) -> dict[str, Any]:
    """Return the plain-dict constructor config of a model, with its class count filled in.

    This dict is stored in every checkpoint so that the checkpoint alone rebuilds the model.
    """
    cfg = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else dict(model_cfg)
    )
    if "_target_" not in cfg:
        raise UserError(
            f"model config {cfg} has no _target_; pick one of conf/model/*.yaml (model=cnn1)"
        )
    for key in _DESCRIPTIVE_KEYS:
        cfg.pop(key, None)
    for key, off in _OFF_BY_DEFAULT.items():
        if key in cfg and cfg[key] == off:
            del cfg[key]
    cfg["num_classes"] = int(num_classes)
    return cfg


def build_net(config: dict[str, Any]) -> nn.Module:
    """Instantiate the nn.Module described by a dict from net_config."""
    return hydra.utils.instantiate(config, _convert_="all")


def model_label(model_cfg: DictConfig | dict) -> str:
    """The model's name in reports: its `name`, with a declared variant appended
    (`cnn1-batchnorm`), so that a variant never shares a row with the paper's net."""
    name = str(model_cfg.get("name") or model_cfg.get("_target_"))
    return f"{name}-batchnorm" if model_cfg.get("norm") == "batch" else name
