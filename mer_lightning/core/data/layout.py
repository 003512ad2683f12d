"""Locate the Kaggle "Micro Expressions" layout: a folder, its parent, a zip, or a download."""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mer_lightning.core.errors import UserError

KAGGLE_DATASET = "kmirfan/micro-expressions"
EXPECTED_LAYOUT = "Micro_Expressions/{train,test}/<class>/*.jpg"
DOWNLOAD_HINT = (
    f"set data.download=true to fetch it with kagglehub, or run "
    f"`kaggle datasets download {KAGGLE_DATASET}` and point data.root at the zip"
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class SplitFiles:
    """Every file under one split, grouped by class folder name."""

    root: Path
    files: dict[str, list[Path]]


def _holds_splits(folder: Path) -> bool:
    return all((folder / split).is_dir() for split in SPLITS)


def find_split_root(path: Path, max_depth: int = 3) -> Path | None:
    """The folder under `path` (itself included) that holds both train/ and test/."""
    frontier = [path]
    for _ in range(max_depth + 1):
        for folder in frontier:
            if _holds_splits(folder):
                return folder
        frontier = sorted(
            child for folder in frontier for child in folder.iterdir() if child.is_dir()
        )
    return None


def extract_zip(archive: Path, cache_dir: Path) -> Path:
    """Unpack `archive` once into `cache_dir`; later calls reuse the unpacked copy."""
    stat = archive.stat()
    key = hashlib.sha1(
        f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()
    target = cache_dir / f"{archive.stem}-{key[:12]}"
    done_marker = target / ".unpacked"
    if not done_marker.exists():
        try:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(target)
        except zipfile.BadZipFile as error:
            raise UserError(
                f"data.root={archive} is not a readable zip ({error}); download it again: "
                f"{DOWNLOAD_HINT}"
            ) from error
        done_marker.touch()
    return target


def download(cache_dir: Path) -> Path:
    """Fetch the dataset with kagglehub and return the folder it unpacked to."""
    import kagglehub

    try:
        return Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as error:  # kagglehub raises many types: network, auth, quota
        raise UserError(
            f"data.download=true could not fetch {KAGGLE_DATASET} with kagglehub ({error}). "
            "Check network access and Kaggle credentials (~/.kaggle/kaggle.json), or download "
            f"it by hand and set data.root (expected layout: {EXPECTED_LAYOUT})"
        ) from error


def check_root(root: str | Path, download_missing: bool) -> None:
    """Fail fast, without reading any data, when `data.root` cannot be a dataset."""
    path = Path(root).expanduser()
    if path.is_file() and not zipfile.is_zipfile(path):
        raise UserError(
            f"data.root={root} is a file but not a zip; point it at the folder holding "
            f"train/ and test/ ({EXPECTED_LAYOUT}) or at the Kaggle zip"
        )
    if not path.exists() and not download_missing:
        raise UserError(
            f"data.root={root} does not exist; expected {EXPECTED_LAYOUT} there. "
            f"{DOWNLOAD_HINT[0].upper()}{DOWNLOAD_HINT[1:]}"
        )


def resolve_root(root: str | Path, download_missing: bool, cache_dir: str | Path) -> Path:
    """Return the folder that holds train/ and test/ for the `data.root` a user gave."""
    check_root(root, download_missing)
    path = Path(root).expanduser()
    cache = Path(cache_dir).expanduser()
    if path.is_file():
        path = extract_zip(path, cache)
    elif not path.exists():
        path = download(cache)
    found = find_split_root(path)
    if found is None:
        raise UserError(
            f"data.root={root} has no train/ and test/ folders; expected {EXPECTED_LAYOUT} "
            f"(download: {DOWNLOAD_HINT})"
        )
    return found


def list_split(split_root: Path) -> SplitFiles:
    """Group the files of one split by class folder, sorted for a stable order."""
    files = {
        folder.name: sorted(p for p in folder.rglob("*") if p.is_file())
        for folder in sorted(split_root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }
    return SplitFiles(root=split_root, files=files)


def class_names(train: SplitFiles, test: SplitFiles) -> list[str]:
    """Sorted class names; train/ and test/ must have the same class folders."""
    train_classes, test_classes = set(train.files), set(test.files)
    if train_classes != test_classes:
        only_train = sorted(train_classes - test_classes)
        only_test = sorted(test_classes - train_classes)
        raise UserError(
            f"class folders differ between {train.root} and {test.root}: "
            f"only in train: {only_train or 'none'}; only in test: {only_test or 'none'}. "
            "Rename or remove folders so both splits have the same classes"
        )
    if not train_classes:
        raise UserError(f"{train.root} has no class folders; expected {EXPECTED_LAYOUT}")
    empty = [name for name in sorted(train_classes) if not train.files[name]]
    if empty:
        raise UserError(
            f"class folders without images in {train.root}: {empty}; add images or remove them"
        )
    return sorted(train_classes)
