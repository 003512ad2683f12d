"""Decode a dataset's JPEGs once into one uint8 tensor, so no epoch pays for decoding again."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mer_lightning.errors import UserError

log = logging.getLogger(__name__)

BAD_FILE_POLICIES = ("skip", "raise")


@dataclass
class DecodedImages:
    """Images as one (N, 3, S, S) uint8 tensor, their labels and source files."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[Path]


def read_image(path: Path, image_size: int) -> torch.Tensor:
    """One image file as an RGB uint8 (3, S, S) tensor; any readable mode or size is converted."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def decode_split(
    files: dict[str, list[Path]],
    class_names: Sequence[str],
    image_size: int,
    on_bad_file: str = "skip",
) -> DecodedImages:
    """Decode every file of a split; unreadable files are skipped with one warning, or raise."""
    if on_bad_file not in BAD_FILE_POLICIES:
        raise UserError(f"data.on_bad_file={on_bad_file} is not one of {list(BAD_FILE_POLICIES)}")
    images, labels, paths, bad = [], [], [], []
    for label, name in enumerate(class_names):
        for path in files[name]:
            try:
                images.append(read_image(path, image_size))
            except (OSError, UnidentifiedImageError, ValueError) as error:
                if on_bad_file == "raise":
                    raise UserError(
                        f"cannot read image {path} ({error}); remove or replace the file, "
                        "or set data.on_bad_file=skip"
                    ) from error
                bad.append(path)
                continue
            labels.append(label)
            paths.append(path)
    if bad:
        shown = ", ".join(str(p) for p in bad[:10]) + (" ..." if len(bad) > 10 else "")
        log.warning("skipped %d unreadable file(s) (data.on_bad_file=skip): %s", len(bad), shown)
    if not images:
        raise UserError(f"no readable images among {sum(map(len, files.values()))} files")
    return DecodedImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), paths)


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held_out): `fraction` of each class held out, chosen by `seed`."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"data.val_fraction={fraction} must be between 0 and 1 (exclusive)")
    generator = torch.Generator().manual_seed(seed)
    kept, held_out = [], []
    for label in labels.unique(sorted=True):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_held = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        held_out.append(members[:n_held])
        kept.append(members[n_held:])
    return torch.cat(kept).sort().values, torch.cat(held_out).sort().values


class ImageSubset(Dataset):
    """A view of some decoded images, with an optional per-image transform."""

    def __init__(self, data: DecodedImages, indices: torch.Tensor, transform=None) -> None:
        self.data = data
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.indices[item]
        image = self.data.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.data.labels[index]
