"""The one definition of the nets' input: what training, prediction and export all feed them."""

from collections.abc import Sequence

import torch


def channel_stats(values: Sequence[float]) -> torch.Tensor:
    """Per-channel mean or std as a (1, C, 1, 1) tensor that broadcasts over a batch."""
    return torch.tensor([float(v) for v in values]).view(1, -1, 1, 1)


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float input of the nets: pixels scaled to [0, 1], then
    (x - mean) / std per channel (data.mean, data.std)."""
    return images.float().div_(255.0).sub_(mean).div_(std)
