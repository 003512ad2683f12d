"""Damage a copy of the synthetic dataset the way real downloads are damaged."""

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

# name in train/anger -> what the audit and the datamodule must make of it
UNREADABLE = {
    "truncated.jpg": "corrupt",  # a JPEG cut off half way
    "zero.jpg": "empty",  # zero bytes
    "notes.txt": "not an image",  # a stray text file in a class folder
}
CONVERTIBLE = {
    "gray.jpg": ("JPEG", "L", (80, 80)),  # grayscale JPEG
    "cmyk.jpg": ("JPEG", "CMYK", (80, 80)),  # CMYK JPEG (print workflows)
    "png_named.jpg": ("PNG", "RGB", (80, 80)),  # PNG data with a .jpg name
    "small.jpg": ("JPEG", "RGB", (48, 60)),  # another size
}


def copy_dataset(source: Path, target: Path) -> Path:
    """A private copy of a Kaggle-layout dataset (the session one must stay intact)."""
    shutil.copytree(source, target)
    return target


def _picture(mode: str, size: tuple[int, int]) -> Image.Image:
    pixels = np.random.default_rng(len(mode) + size[0]).integers(0, 256, (size[1], size[0], 3))
    return Image.fromarray(pixels.astype(np.uint8), "RGB").convert(mode)


def write_bad_files(root: Path) -> Path:
    """Add every kind of bad and odd file to train/anger; returns that folder."""
    folder = root / "train" / "anger"
    good = (folder / "anger1.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("labels checked by hand on 2023-05-01\n")
    for name, (fmt, mode, size) in CONVERTIBLE.items():
        buffer = io.BytesIO()
        _picture(mode, size).save(buffer, format=fmt)
        (folder / name).write_bytes(buffer.getvalue())
    return folder


def write_duplicates(root: Path) -> dict[str, list[str]]:
    """Byte-identical copies: within a split, across splits, and with conflicting labels.

    Returns the expected groups as lists of `split/class/file` names.
    """
    copies = {
        "within": ("train/happiness/happiness1.jpg", "train/happiness/copy.jpg"),
        "leak": ("train/fear/fear1.jpg", "test/fear/leaked.jpg"),
        "conflict": ("train/sadness/sadness1.jpg", "train/surprise/mislabelled.jpg"),
        "leak_conflict": ("train/disgust/disgust1.jpg", "test/neutral/leaked_other_label.jpg"),
    }
    for original, copy in copies.values():
        shutil.copyfile(root / original, root / copy)
    return {kind: sorted(pair) for kind, pair in copies.items()}
