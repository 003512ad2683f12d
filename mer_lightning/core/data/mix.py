"""MixUp and CutMix of whole training batches, the last step of the on-device augmentation.

MixUp (Zhang et al., 2018) blends pairs of faces and their one-hot labels, weight ~
Beta(alpha, alpha); CutMix (Yun et al., 2019) pastes a box of one face into another and
mixes the labels by its area. Both regularise nets that end training over-fitted. Blended
images are float pixels on the uint8 scale (0-255), so the module normalises them like any
other batch; labels become class probabilities (N, classes).
"""

import torch
from torchvision.transforms import v2

from mer_lightning.core.errors import UserError


def batch_mix(mixup_alpha: float, cutmix_alpha: float, num_classes: int) -> v2.Transform | None:
    """torchvision's MixUp and/or CutMix of (images, labels) batches (None when both are 0).

    With both on, each batch gets one of them at random, as in the DeiT and timm recipes. A
    single one is returned bare, so that it draws the same random numbers as a run with only
    that one always did.
    """
    for key, alpha in (("data.mixup_alpha", mixup_alpha), ("data.cutmix_alpha", cutmix_alpha)):
        if alpha < 0:
            raise UserError(f"{key}={alpha} must be >= 0 (0 = off)")
    mixes = [
        mix(alpha=alpha, num_classes=num_classes)
        for mix, alpha in ((v2.MixUp, mixup_alpha), (v2.CutMix, cutmix_alpha))
        if alpha > 0
    ]
    if len(mixes) > 1:
        return v2.RandomChoice(mixes)
    return mixes[0] if mixes else None


def mix_batch(mix: v2.Transform, images: torch.Tensor, labels: torch.Tensor):
    """(images, integer labels) -> (blended float 0-255 images, label probabilities)."""
    return mix(images.float(), labels)
