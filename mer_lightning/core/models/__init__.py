"""Architectures: plain nn.Modules built by Hydra from conf/model/*.yaml."""

from mer_lightning.core.models.build import build_net, net_config

__all__ = ["build_net", "net_config"]
