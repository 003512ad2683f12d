"""Test-time augmentation: what a net predicts for several views of each face, averaged.

Faces are close to left-right symmetric and training flips them at random, so the mirror
is an equally likely view of the same face (`tta_hflip`); training also crops each face at a
random offset of a few pixels, so the face moved by a few pixels is another (`tta_shift`).
Averaging the views' logits removes part of the net's view-to-view noise. Each is screened
on the validation split before `experiment=best` takes it (docs/results/README.md: mirror
averaging adopted, shift averaging not). One function, so that validation,
test, predict, the predict CLI and distillation's teachers all average the same way.
"""

import torch
import torch.nn.functional as F
from torch import nn

from mer_lightning.core.errors import UserError


def shifted_views(images: torch.Tensor, shift: int) -> list[torch.Tensor]:
    """(N, C, H, W) `images` and the same moved by `shift` pixels up, down, left and right,
    the uncovered border filled by reflection as training's random crops fill it."""
    if shift == 0:
        return [images]
    height, width = images.shape[-2:]
    padded = F.pad(images, (shift, shift, shift, shift), mode="reflect")
    views = [images]
    for dy, dx in ((-shift, 0), (shift, 0), (0, -shift), (0, shift)):
        top, left = shift - dy, shift - dx
        views.append(padded[..., top : top + height, left : left + width])
    return views


def averaged_logits(
    net: nn.Module, images: torch.Tensor, hflip: bool = False, shift: int = 0
) -> torch.Tensor:
    """The mean of `net`'s logits over the views of (N, C, H, W) `images`: the images, their
    moves by `shift` pixels (0: none) and, with `hflip`, the horizontal mirror of each; with
    neither, exactly `net(images)`."""
    views = shifted_views(images, shift)
    if hflip:
        views += [view.flip(-1) for view in views]
    logits = net(views[0])
    if len(views) == 1:
        return logits
    for view in views[1:]:
        logits = logits + net(view)
    return logits / len(views)


def check_shift(shift: int, image_size: int) -> None:
    """Raise a UserError naming module.tta_shift when faces of `image_size` pixels cannot
    move by `shift`."""
    if isinstance(shift, bool) or int(shift) != shift or not 0 <= shift < image_size // 2:
        raise UserError(
            f"module.tta_shift={shift} must be a whole number of pixels from 0 (off) to "
            f"{image_size // 2 - 1} for {image_size} px faces, e.g. 2"
        )
