"""The paper's train-time augmentation, built from the data.augment config."""

from collections.abc import Mapping
from typing import Any

from torchvision.transforms import v2


def build_augmentation(augment: Mapping[str, Any], image_size: int) -> v2.Compose | None:
    """A torchvision v2 pipeline for uint8 image tensors; None when every switch is off."""
    steps: list[v2.Transform] = []
    crop = augment.get("crop", {})
    if crop.get("enabled", False):
        steps.append(
            v2.RandomCrop(
                image_size,
                padding=crop["padding"],
                padding_mode=crop.get("padding_mode", "reflect"),
            )
        )
    hflip = augment.get("hflip", {})
    if hflip.get("enabled", False):
        steps.append(v2.RandomHorizontalFlip(p=hflip.get("p", 0.5)))
    blur = augment.get("blur", {})
    if blur.get("enabled", False):
        gaussian = v2.GaussianBlur(kernel_size=blur["kernel_size"], sigma=tuple(blur["sigma"]))
        steps.append(v2.RandomApply([gaussian], p=blur.get("p", 1.0)))
    rotation = augment.get("rotation", {})
    if rotation.get("enabled", False):
        steps.append(v2.RandomRotation(degrees=rotation["degrees"]))
    return v2.Compose(steps) if steps else None
