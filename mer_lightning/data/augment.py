"""The train-time augmentation (the paper's, plus optional random erasing), built from the
data.augment config."""

from collections.abc import Mapping
from typing import Any

from torchvision.transforms import v2

from mer_lightning.errors import UserError


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
    erasing = augment.get("erasing", {})
    if erasing.get("enabled", False):
        steps.append(v2.RandomErasing(**erasing_options(erasing)))
    return v2.Compose(steps) if steps else None


def erasing_options(erasing: Mapping[str, Any]) -> dict[str, Any]:
    """p, scale, ratio and value of data.augment.erasing, checked, with RandomErasing's
    defaults but a mid-grey fill (uint8 pixels: 128 is about 0 after normalisation)."""
    p = float(erasing.get("p", 0.5))
    low, high = (float(s) for s in erasing.get("scale", (0.02, 0.33)))
    ratio_low, ratio_high = (float(r) for r in erasing.get("ratio", (0.3, 3.3)))
    value = int(erasing.get("value", 128))
    if not 0 <= p <= 1:
        raise UserError(f"data.augment.erasing.p={p} must be a probability in [0, 1]")
    if not 0 < low <= high < 1:
        raise UserError(
            f"data.augment.erasing.scale=[{low}, {high}] must be shares of the image with "
            "0 < low <= high < 1"
        )
    if not 0 < ratio_low <= ratio_high:
        raise UserError(
            f"data.augment.erasing.ratio=[{ratio_low}, {ratio_high}] must be aspect ratios "
            "with 0 < low <= high"
        )
    if not 0 <= value <= 255:
        raise UserError(f"data.augment.erasing.value={value} must be a uint8 pixel value, 0-255")
    return {"p": p, "scale": (low, high), "ratio": (ratio_low, ratio_high), "value": value}
