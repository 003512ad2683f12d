"""Read each image file once: its bytes give the content hash, the decoded picture a tensor.

Training (`decode_split`) and the dataset audit (`mer_lightning.audit`) read files through
`inspect_file`, so both agree on which files are broken and on the duplicate groups. Every
file is decoded in the datamodule's setup, before the first step: a broken file is found
(and skipped or reported) there and can never stop an epoch half way.
"""

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mer_lightning.core.errors import UserError

log = logging.getLogger(__name__)

BAD_FILE_POLICIES = ("skip", "raise")
SHOWN_BAD_FILES = 10

# What can be wrong with a file, as reported by FileInfo.problem_kind.
EMPTY = "empty"  # zero bytes
UNREADABLE = "unreadable"  # the OS refused to read it (permissions, I/O error)
NOT_AN_IMAGE = "not an image"  # no image format recognises its bytes (a stray .txt, .DS_Store)
CORRUPT = "corrupt"  # an image format recognises it, but decoding fails (truncated JPEG)


@dataclass(frozen=True)
class FileInfo:
    """What reading one file found: its content hash, and its image facts or its problem."""

    path: Path
    sha1: str | None = None  # of the raw bytes; None when they could not be read
    format: str | None = None  # PIL's name for the real format (JPEG, PNG), whatever the suffix
    mode: str | None = None  # RGB, L (grayscale), CMYK, P, RGBA, ...
    size: tuple[int, int] | None = None  # (width, height)
    problem_kind: str | None = None  # None for a readable image, else EMPTY, CORRUPT, ...
    problem: str | None = None  # one line for people: what is wrong with the file

    @property
    def readable(self) -> bool:
        """True when the file decoded into an image."""
        return self.problem_kind is None


def inspect_file(path: Path) -> tuple[FileInfo, Image.Image | None]:
    """Read `path` once: hash its bytes and decode them fully (so truncation shows).

    Returns the FileInfo and the decoded image, or None as image when the file is broken.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        return FileInfo(path, problem_kind=UNREADABLE, problem=f"cannot read ({error})"), None
    sha1 = hashlib.sha1(data).hexdigest()
    if not data:
        return FileInfo(path, sha1, problem_kind=EMPTY, problem="empty file (0 bytes)"), None
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        info = FileInfo(path, sha1, problem_kind=NOT_AN_IMAGE, problem="not an image file")
        return info, None
    except Exception as error:  # PIL's format plugins raise many types on malformed headers
        info = FileInfo(path, sha1, problem_kind=CORRUPT, problem=f"corrupt image header ({error})")
        return info, None
    try:
        image.load()
    except Exception as error:  # truncated data: OSError; broken streams: ValueError, SyntaxError
        info = FileInfo(
            path,
            sha1,
            image.format,
            image.mode,
            image.size,
            CORRUPT,
            f"corrupt {image.format} ({error})",
        )
        return info, None
    return FileInfo(path, sha1, image.format, image.mode, image.size), image


def to_tensor(image: Image.Image, image_size: int) -> torch.Tensor:
    """A decoded image as RGB uint8 (3, S, S); any mode (L, CMYK, P, RGBA) or size is converted."""
    image = image.convert("RGB")
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


def read_image(path: Path, image_size: int) -> torch.Tensor:
    """One image file as an RGB uint8 (3, S, S) tensor; raises UserError when it is broken."""
    info, image = inspect_file(path)
    if image is None:
        raise UserError(f"cannot use image {path}: {info.problem}")
    return to_tensor(image, image_size)


@dataclass
class DecodedImages:
    """The readable images of one split as one (N, 3, S, S) uint8 tensor, with their labels.

    `paths` and `hashes` line up with `images`; `files` holds a FileInfo and class name for
    every file of the split, broken ones included, for the audit.
    """

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[Path]
    hashes: list[str]
    files: list[tuple[str, FileInfo]] = field(default_factory=list)

    @property
    def bad_files(self) -> list[FileInfo]:
        """The files that could not be decoded (and so are not in `images`)."""
        return [info for _, info in self.files if not info.readable]

    def without(self, drop: set[Path]) -> "DecodedImages":
        """A copy without the images whose path is in `drop` (used by data.dedup)."""
        keep = [i for i, path in enumerate(self.paths) if path not in drop]
        index = torch.tensor(keep, dtype=torch.long)
        return DecodedImages(
            self.images[index],
            self.labels[index],
            [self.paths[i] for i in keep],
            [self.hashes[i] for i in keep],
            self.files,
        )


def check_policy(on_bad_file: str) -> None:
    """Reject an unknown data.on_bad_file value."""
    if on_bad_file not in BAD_FILE_POLICIES:
        raise UserError(
            f"data.on_bad_file={on_bad_file} is not one of {list(BAD_FILE_POLICIES)}; "
            "use skip (warn once and leave bad files out) or raise (stop at the first)"
        )


def decode_split(
    files: dict[str, list[Path]],
    class_names: Sequence[str],
    image_size: int,
    on_bad_file: str = "skip",
) -> DecodedImages:
    """Decode every file of a split, in class then file order.

    A file that does not decode stops with a UserError naming it when on_bad_file=raise;
    with skip it is left out and listed in `files` (the caller warns once for all splits).
    """
    check_policy(on_bad_file)
    images, labels, paths, hashes, seen = [], [], [], [], []
    for label, name in enumerate(class_names):
        for path in files[name]:
            info, image = inspect_file(path)
            if image is not None:
                try:
                    tensor = to_tensor(image, image_size)
                except Exception as error:  # a mode PIL cannot turn into RGB
                    problem = f"corrupt: cannot convert mode {info.mode} to RGB ({error})"
                    info = FileInfo(
                        path, info.sha1, info.format, info.mode, info.size, CORRUPT, problem
                    )
            seen.append((name, info))
            if not info.readable:
                if on_bad_file == "raise":
                    raise UserError(
                        f"cannot use image {path}: {info.problem}. Remove or replace the file, "
                        "or set data.on_bad_file=skip to leave unreadable files out"
                    )
                continue
            images.append(tensor)
            labels.append(label)
            paths.append(path)
            hashes.append(info.sha1)
    if not images:
        raise UserError(
            f"no readable images among the {len(seen)} files of "
            f"{', '.join(class_names)}; check data.root"
        )
    return DecodedImages(
        torch.stack(images), torch.tensor(labels, dtype=torch.long), paths, hashes, seen
    )


def warn_bad_files(bad: Sequence[FileInfo]) -> None:
    """One warning that lists the skipped files (the first SHOWN_BAD_FILES) and why."""
    if not bad:
        return
    shown = "; ".join(f"{info.path} ({info.problem})" for info in bad[:SHOWN_BAD_FILES])
    more = f"; and {len(bad) - SHOWN_BAD_FILES} more" if len(bad) > SHOWN_BAD_FILES else ""
    log.warning(
        "skipped %d unreadable file(s) (data.on_bad_file=skip; `python -m mer_lightning.audit` "
        "lists them all): %s%s",
        len(bad),
        shown,
        more,
    )


def check_val_fraction(fraction: float) -> None:
    """Refuse a validation share that would leave nothing to train on."""
    if not 0.0 <= fraction < 1.0:
        raise UserError(
            f"data.val_fraction={fraction} must be in [0, 1): e.g. 0.1 holds out a tenth of "
            "train/ for validation, 0 trains on all of it without validation"
        )


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held_out): `fraction` of each class held out, chosen by `seed`; none
    held out at fraction 0 (a refit on every training image)."""
    check_val_fraction(fraction)
    generator = torch.Generator().manual_seed(seed)
    kept, held_out = [], []
    for label in labels.unique(sorted=True):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_held = max(1, round(fraction * len(members))) if len(members) > 1 and fraction else 0
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
