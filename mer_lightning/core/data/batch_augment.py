"""The data.augment pipeline applied to a whole uint8 batch at once, on the batch's device.

Per-sample torchvision transforms cost a Python call and a few small kernels per image,
which on a GPU leaves the device waiting for the CPU and on a busy CPU pays a thread-pool
round trip per tiny op. Here each step is one batched tensor op, with per-image random
parameters, drawn from the same distributions as the per-sample pipeline in `augment.py`:

- crop: pad by `padding` (reflect, symmetric, edge or zero fill), crop back at a uniform
  random offset (RandomCrop);
- hflip: mirror with probability p (RandomHorizontalFlip);
- blur: with probability p, a k x k Gaussian with sigma ~ U(sigma) (GaussianBlur);
- rotation: angle ~ U(-degrees, degrees) about the centre, nearest pixel, black fill
  (RandomRotation's defaults);
- erasing: with probability p, a rectangle of area ~ U(scale) of the image and log aspect
  ratio ~ U(log ratio) filled with `value`, up to 10 draws until one fits (RandomErasing).

Crop and flip are one gather of source pixels, exact on uint8; rotation is a second gather
(nearest neighbour, as torchvision's default); only the blurred images go through float.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from mer_lightning.core.data.augment import erasing_options
from mer_lightning.core.errors import UserError

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")  # RandomCrop's, fill 0


@dataclass(frozen=True)
class BatchAugmentation:
    """Random crop, flip, blur, rotation and erasing of uint8 (N, C, S, S) batches; None = off."""

    image_size: int
    crop_padding: int | None = None
    crop_mode: str = "reflect"
    hflip_p: float | None = None
    blur_p: float | None = None
    blur_kernel: int = 3
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    rotation_degrees: float | None = None
    erasing_p: float | None = None
    erasing_scale: tuple[float, float] = (0.02, 0.33)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)
    erasing_value: int = 128

    def __call__(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Augmented copy of `images`; with a bool `mask`, only the images where it is true."""
        if mask is None or bool(mask.all()):
            return self._augment(images)
        if not bool(mask.any()):
            return images
        out = images.clone()
        out[mask] = self._augment(images[mask])
        return out

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.crop_padding is not None or self.hflip_p is not None:
            images = self.crop_and_flip(images)
        if self.blur_p is not None:
            images = self.blur(images)
        if self.rotation_degrees is not None:
            images = self.rotate(images)
        if self.erasing_p is not None:
            images = self.erase(images)
        return images

    def crop_and_flip(self, images: torch.Tensor) -> torch.Tensor:
        """Random reflect-padded crop and horizontal flip, as one exact gather."""
        n, _, height, width = images.shape
        device = images.device
        rows = torch.arange(height, device=device).expand(n, height)
        cols = torch.arange(width, device=device).expand(n, width)
        if self.hflip_p is not None:
            flip = torch.rand(n, device=device) < self.hflip_p
            cols = torch.where(flip[:, None], width - 1 - cols, cols)
        if self.crop_padding is not None:
            pad = self.crop_padding
            rows = rows + torch.randint(0, 2 * pad + 1, (n, 1), device=device) - pad
            cols = cols + torch.randint(0, 2 * pad + 1, (n, 1), device=device) - pad
            rows, row_inside = _pad_index(rows, height, self.crop_mode)
            cols, col_inside = _pad_index(cols, width, self.crop_mode)
        index = rows[:, :, None] * width + cols[:, None, :]
        out = _gather_pixels(images, index.view(n, -1))
        if self.crop_padding is not None and self.crop_mode == "constant":
            inside = row_inside[:, :, None] & col_inside[:, None, :]
            out = out * inside[:, None].to(out.dtype)
        return out

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        """Gaussian blur of a random share of the images, each with its own sigma."""
        chosen = torch.rand(images.shape[0], device=images.device) < self.blur_p
        if not bool(chosen.any()):
            return images
        picked = images[chosen]
        n, channels, _, _ = picked.shape
        low, high = self.blur_sigma
        sigma = torch.empty(n, device=images.device).uniform_(low, high)
        half = (self.blur_kernel - 1) / 2
        x = torch.linspace(-half, half, self.blur_kernel, device=images.device)
        kernel = torch.exp(-0.5 * (x[None, :] / sigma[:, None]) ** 2)
        kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)
        pad = self.blur_kernel // 2
        flat = picked.float().reshape(1, n * channels, *picked.shape[2:])
        flat = F.pad(flat, (pad, pad, pad, pad), mode="reflect")
        flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * channels)
        flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * channels)
        out = images.clone()
        out[chosen] = flat.reshape(picked.shape).round_().clamp_(0, 255).to(images.dtype)
        return out

    def rotate(self, images: torch.Tensor, degrees: torch.Tensor | None = None) -> torch.Tensor:
        """Rotation about the centre, counter-clockwise by `degrees` (default: a random angle
        each in [-rotation_degrees, rotation_degrees]), nearest pixel, zero fill."""
        n, channels, height, width = images.shape
        device = images.device
        if degrees is None:
            degrees = (torch.rand(n, device=device) * 2 - 1) * self.rotation_degrees
        angle = degrees.to(device=device, dtype=torch.float32) * (math.pi / 180)
        cos, sin = angle.cos(), angle.sin()
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # Source pixel of every output pixel (x, y, 1): one small matmul per axis.
        ys, xs = torch.meshgrid(
            torch.arange(height, device=device, dtype=torch.float32),
            torch.arange(width, device=device, dtype=torch.float32),
            indexing="ij",
        )
        grid = torch.stack([xs.flatten(), ys.flatten(), torch.ones_like(xs).flatten()])
        src_x = torch.stack([cos, -sin, cx - cos * cx + sin * cy], dim=1) @ grid
        src_y = torch.stack([sin, cos, cy - sin * cx - cos * cy], dim=1) @ grid
        # Shift by one into a zero-bordered copy: a source outside the image lands on zero.
        src_x = src_x.round_().clamp_(-1, width).add_(1)
        src_y = src_y.round_().clamp_(-1, height).add_(1)
        index = src_y.mul_(width + 2).add_(src_x).long()
        bordered = F.pad(images, (1, 1, 1, 1))
        flat = bordered.reshape(n, channels, (height + 2) * (width + 2))
        out = flat.gather(2, index[:, None, :].expand(n, channels, height * width))
        return out.view(n, channels, height, width)

    def erase(self, images: torch.Tensor) -> torch.Tensor:
        """Fill one random rectangle per chosen image with `erasing_value` (Random Erasing,
        Zhong et al.): the face must be told from what is left of it."""
        n, _, height, width = images.shape
        device = images.device
        tries = 10  # RandomErasing's draws before it gives up on an image
        area = height * width * torch.empty(n, tries, device=device).uniform_(*self.erasing_scale)
        log_low, log_high = (math.log(r) for r in self.erasing_ratio)
        aspect = torch.empty(n, tries, device=device).uniform_(log_low, log_high).exp_()
        box_h = (area * aspect).sqrt_().round_().long()
        box_w = (area / aspect).sqrt_().round_().long()
        fits = (box_h < height) & (box_w < width)
        first = fits.int().argmax(dim=1, keepdim=True)  # the first draw that fits, as torchvision
        box_h, box_w = box_h.gather(1, first)[:, 0], box_w.gather(1, first)[:, 0]
        chosen = (torch.rand(n, device=device) < self.erasing_p) & fits.any(dim=1)
        top = (torch.rand(n, device=device) * (height - box_h + 1)).long()
        left = (torch.rand(n, device=device) * (width - box_w + 1)).long()
        rows = torch.arange(height, device=device)[None, :]
        cols = torch.arange(width, device=device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
        box = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
        fill = torch.tensor(self.erasing_value, dtype=images.dtype, device=device)
        return torch.where(box[:, None], fill, images)


def _pad_index(index: torch.Tensor, size: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Map indices of a padded axis back into [0, size) the way torchvision's padding modes
    fill the border; also returns where the index was inside (constant mode fills the rest)."""
    inside = (index >= 0) & (index < size)
    if mode == "reflect":  # ... 2 1 | 0 1 2 ... (edge not repeated)
        index = index.abs()
        index = torch.where(index > size - 1, 2 * (size - 1) - index, index)
    elif mode == "symmetric":  # ... 1 0 | 0 1 2 ... (edge repeated)
        index = torch.where(index < 0, -index - 1, index)
        index = torch.where(index > size - 1, 2 * size - 1 - index, index)
    return index.clamp(0, size - 1), inside  # edge: clamp; constant: masked by the caller


def _gather_pixels(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[n, c, p] = images[n, c, index[n, p]] for flat pixel indices, reshaped to images."""
    n, channels, height, width = images.shape
    flat = images.reshape(n, channels, height * width)
    gathered = flat.gather(2, index[:, None, :].expand(n, channels, index.shape[1]))
    return gathered.view(n, channels, height, width)


def build_batch_augmentation(
    augment: Mapping[str, Any], image_size: int
) -> BatchAugmentation | None:
    """The batched pipeline for the data.augment config; None when every switch is off."""

    def enabled(name: str) -> Mapping[str, Any] | None:
        step = augment.get(name, {})
        return step if step.get("enabled", False) else None

    crop, hflip = enabled("crop"), enabled("hflip")
    blur, rotation, erasing = enabled("blur"), enabled("rotation"), enabled("erasing")
    if not any((crop, hflip, blur, rotation, erasing)):
        return None
    mode = crop.get("padding_mode", "reflect") if crop else "reflect"
    if mode not in PADDING_MODES:
        raise UserError(
            f"data.augment.crop.padding_mode={mode} must be one of {list(PADDING_MODES)}"
        )
    return BatchAugmentation(
        image_size=image_size,
        crop_padding=int(crop["padding"]) if crop else None,
        crop_mode=mode,
        hflip_p=float(hflip.get("p", 0.5)) if hflip else None,
        blur_p=float(blur.get("p", 1.0)) if blur else None,
        blur_kernel=int(blur["kernel_size"]) if blur else 3,
        blur_sigma=tuple(float(s) for s in blur["sigma"]) if blur else (0.1, 1.0),
        rotation_degrees=float(rotation["degrees"]) if rotation else None,
        **({f"erasing_{k}": v for k, v in erasing_options(erasing).items()} if erasing else {}),
    )


class Flagged(Dataset):
    """A dataset of (image, label) items as (image, label, augment) with a fixed flag.

    With batched augmentation the training loader yields plain images and this flag tells
    the batch step which of them to augment (data.include_originals mixes in copies that
    must stay original).
    """

    def __init__(self, dataset: Dataset, augment: bool) -> None:
        self.dataset = dataset
        self.augment = augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        image, label = self.dataset[item]
        return image, label, self.augment


def augment_batch(augmentation: BatchAugmentation | None, batch):
    """(images, labels, flags) -> (augmented images, labels); other batches pass through."""
    if not isinstance(batch, list | tuple) or len(batch) != 3:
        return batch
    images, labels, flags = batch
    if augmentation is not None:
        images = augmentation(images, flags.to(device=images.device, dtype=torch.bool))
    return images, labels
