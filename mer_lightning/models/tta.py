"""Test-time augmentation: what a net predicts for an image and its mirror, averaged.

Faces are close to left-right symmetric and training flips them at random, so the mirror
is an equally likely view of the same face; averaging the two logits removes part of the
net's view-to-view noise. Measured on the validation split of the best-recipe runs before
it was adopted (docs/results/README.md). One function, so that validation, test, predict
and the predict CLI all average the same way.
"""

import torch
from torch import nn


def mirror_averaged_logits(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The mean of `net`'s logits for (N, C, H, W) `images` and for their horizontal mirror."""
    return (net(images) + net(images.flip(-1))) / 2
