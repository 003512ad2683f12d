"""The train-time augmentation (the paper's, plus optional random erasing), built from the
data.augment config."""

from collections.abc import Mapping
from typing import Any

from torchvision.transforms import v2

from mer_lightning.core.errors import UserError


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
    low, high = _pair(erasing, "scale", (0.02, 0.33))
    ratio_low, ratio_high = _pair(erasing, "ratio", (0.3, 3.3))
    value = int(erasing.get("value", 128))
    if not 0 <= p <= 1:
        raise UserError(f"data.augment.erasing.p={p} must be a probability in [0, 1] (default 0.5)")
    if not 0 < low <= high < 1:
        raise UserError(
            f"data.augment.erasing.scale=[{low}, {high}] must be shares of the image with "
            "0 < low <= high < 1 (default [0.02, 0.33])"
        )
    if not 0 < ratio_low <= ratio_high:
        raise UserError(
            f"data.augment.erasing.ratio=[{ratio_low}, {ratio_high}] must be aspect ratios "
            "with 0 < low <= high (default [0.3, 3.3])"
        )
    if not 0 <= value <= 255:
        raise UserError(
            f"data.augment.erasing.value={value} must be a uint8 pixel value, 0-255 (default 128)"
        )
    return {"p": p, "scale": (low, high), "ratio": (ratio_low, ratio_high), "value": value}


def _pair(
    erasing: Mapping[str, Any], key: str, default: tuple[float, float]
) -> tuple[float, float]:
    """data.augment.erasing.<key> as (low, high), or an error naming the key."""
    value = erasing.get(key, default)
    try:
        low, high = (float(bound) for bound in value)
    except (TypeError, ValueError):
        raise UserError(
            f"data.augment.erasing.{key}={value} must be a [low, high] pair, "
            f"e.g. data.augment.erasing.{key}=[{default[0]},{default[1]}]"
        ) from None
    return low, high
