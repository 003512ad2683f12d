"""The one definition of the nets' input: what training, prediction and export all feed them."""

from collections.abc import Sequence

import torch


def channel_stats(values: Sequence[float]) -> torch.Tensor:
    """Per-channel mean or std as a (1, C, 1, 1) tensor that broadcasts over a batch."""
    return torch.tensor([float(v) for v in values]).view(1, -1, 1, 1)


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, H, W) pixels on the uint8 scale (uint8, or float once MixUp blended them)
    -> float input of the nets: scaled to [0, 1], then (x - mean) / std per channel
    (data.mean, data.std). The images themselves are left as they were."""
    return images.to(torch.float32, copy=True).div_(255.0).sub_(mean).div_(std)
