"""What is wrong with a dataset: broken files, odd images, empty folders, duplicates.

The report is built from FileInfo records (`mer_lightning.core.data.images.inspect_file`), which
the audit command reads itself and a training run gets from its datamodule for free: the
datamodule hashes each file's bytes while it decodes them, so a run's audit reads nothing twice.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer_lightning.core.data.images import NOT_AN_IMAGE, FileInfo, inspect_file
from mer_lightning.core.data.layout import SPLITS, list_split

# Image formats (PIL names) that a file suffix promises; a PNG named .jpg is reported.
SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}


@dataclass(frozen=True)
class Entry:
    """One file of the dataset: its split, its class folder and what reading it found."""

    split: str
    label: str
    info: FileInfo

    @property
    def name(self) -> str:
        """`split/class/file`, the way a person finds the file under data.root."""
        return f"{self.split}/{self.label}/{self.info.path.name}"


@dataclass(frozen=True)
class DuplicateGroup:
    """Files with byte-identical content (same sha1)."""

    sha1: str
    members: tuple[Entry, ...]

    @property
    def within_split(self) -> bool:
        """Two or more copies inside one split."""
        return any(n > 1 for n in Counter(m.split for m in self.members).values())

    @property
    def cross_split(self) -> bool:
        """Copies in both train and test: the test set leaks into training."""
        return len({m.split for m in self.members}) > 1

    @property
    def conflicting(self) -> bool:
        """Copies in different class folders: the same picture carries two labels."""
        return len({m.label for m in self.members}) > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "sha1": self.sha1,
            "files": [m.name for m in self.members],
            "cross_split": self.cross_split,
            "conflicting_labels": self.conflicting,
        }


@dataclass
class AuditReport:
    """Every finding of an audit, plus the counts a run writes to metrics.json."""

    root: Path
    files: dict[str, int]  # files per split
    broken: list[Entry] = field(default_factory=list)  # empty, unreadable or corrupt
    not_images: list[Entry] = field(default_factory=list)  # stray non-image files
    unexpected: list[tuple[Entry, str]] = field(default_factory=list)  # readable, but odd
    expected_mode: str | None = None  # the most common mode, e.g. RGB
    expected_size: tuple[int, int] | None = None  # the most common (width, height)
    empty_folders: list[str] = field(default_factory=list)  # split/class without images
    missing_folders: list[str] = field(default_factory=list)  # a class folder in one split only
    duplicates: list[DuplicateGroup] = field(default_factory=list)

    @property
    def cross_split(self) -> list[DuplicateGroup]:
        return [g for g in self.duplicates if g.cross_split]

    @property
    def conflicting(self) -> list[DuplicateGroup]:
        return [g for g in self.duplicates if g.conflicting]

    @property
    def within_split(self) -> list[DuplicateGroup]:
        return [g for g in self.duplicates if g.within_split]

    def counts(self) -> dict[str, int]:
        """The numbers of the summary line, for metrics.json and audit.json."""
        return {
            **{f"{split}_files": n for split, n in self.files.items()},
            "broken_files": len(self.broken),
            "non_image_files": len(self.not_images),
            "unexpected_images": len(self.unexpected),
            "empty_class_folders": len(self.empty_folders),
            "missing_class_folders": len(self.missing_folders),
            "duplicate_groups": len(self.duplicates),
            "duplicate_groups_within_split": len(self.within_split),
            "duplicate_groups_cross_split": len(self.cross_split),
            "duplicate_groups_conflicting_labels": len(self.conflicting),
        }

    def summary(self) -> str:
        """One line: every count, so that a run's log shows the state of its data."""
        c = self.counts()
        per_split = ", ".join(f"{n} {split}" for split, n in self.files.items())
        expected = (
            f" (expected {self.expected_size[0]}x{self.expected_size[1]} {self.expected_mode})"
            if self.expected_size
            else ""
        )
        return (
            f"data audit: {sum(self.files.values())} files ({per_split}); "
            f"{c['broken_files']} unreadable or corrupt, {c['non_image_files']} not images, "
            f"{c['unexpected_images']} of unexpected size/mode/format{expected}, "
            f"{c['empty_class_folders']} empty class folders; "
            f"{c['duplicate_groups']} duplicate groups: "
            f"{c['duplicate_groups_within_split']} within a split, "
            f"{c['duplicate_groups_cross_split']} across train and test, "
            f"{c['duplicate_groups_conflicting_labels']} with conflicting labels"
        )

    def to_json(self) -> dict[str, Any]:
        """Everything, file by file, for audit.json."""
        return {
            "root": str(self.root),
            "summary": self.summary(),
            "counts": self.counts(),
            "expected": {"mode": self.expected_mode, "size": self.expected_size},
            "broken_files": [{"file": e.name, "problem": e.info.problem} for e in self.broken],
            "non_image_files": [e.name for e in self.not_images],
            "unexpected_images": [{"file": e.name, "why": why} for e, why in self.unexpected],
            "empty_class_folders": self.empty_folders,
            "missing_class_folders": self.missing_folders,
            "duplicate_groups": [g.to_json() for g in self.duplicates],
        }


def _oddities(info: FileInfo, mode: str | None, size: tuple[int, int] | None) -> str | None:
    """Why a readable image is unexpected, or None."""
    reasons = []
    if info.mode != mode:
        reasons.append(f"mode {info.mode}")
    if info.size != size:
        reasons.append(f"size {info.size[0]}x{info.size[1]}")
    promised = SUFFIX_FORMATS.get(info.path.suffix.lower())
    if promised != info.format:
        reasons.append(f"{info.format} data named {info.path.suffix or '(no suffix)'}")
    return ", ".join(reasons) or None


def build_report(
    root: Path, folders: Mapping[str, Mapping[str, int]], entries: Iterable[Entry]
) -> AuditReport:
    """Audit findings from every file's Entry and the file count of each split/class folder."""
    entries = list(entries)
    readable = [e for e in entries if e.info.readable]
    modes = Counter(e.info.mode for e in readable).most_common(1)
    sizes = Counter(e.info.size for e in readable).most_common(1)
    mode = modes[0][0] if modes else None
    size = sizes[0][0] if sizes else None
    report = AuditReport(
        root=root,
        files={split: sum(counts.values()) for split, counts in folders.items()},
        expected_mode=mode,
        expected_size=size,
    )
    readable_per_folder: Counter[tuple[str, str]] = Counter()
    by_hash: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.info.problem_kind == NOT_AN_IMAGE:
            report.not_images.append(entry)
        elif not entry.info.readable:
            report.broken.append(entry)
        else:
            readable_per_folder[entry.split, entry.label] += 1
            by_hash[entry.info.sha1].append(entry)  # duplicates: identical readable images
            why = _oddities(entry.info, mode, size)
            if why:
                report.unexpected.append((entry, why))
    all_classes = sorted({label for counts in folders.values() for label in counts})
    for split, counts in folders.items():
        for label in all_classes:
            if label not in counts:
                report.missing_folders.append(f"{split}/{label}")
            elif readable_per_folder[split, label] == 0:
                report.empty_folders.append(f"{split}/{label}")
    report.duplicates = [
        DuplicateGroup(sha1, tuple(members))
        for sha1, members in sorted(by_hash.items(), key=lambda item: item[1][0].name)
        if len(members) > 1
    ]
    return report


def dedup_drops(report: AuditReport) -> tuple[set[Path], set[Path]]:
    """Files data.dedup=true leaves out: (from test, from train).

    Test loses every copy that also sits in train, so test accuracy is measured on unseen
    pictures; train loses every copy of a picture whose copies carry different labels.
    """
    from_test = {m.info.path for g in report.cross_split for m in g.members if m.split == SPLITS[1]}
    from_train = {
        m.info.path for g in report.conflicting for m in g.members if m.split == SPLITS[0]
    }
    return from_test, from_train


def scan(root: Path) -> AuditReport:
    """Read every file under root/{train,test}/<class>/ once and audit the lot."""
    entries, folders = [], {}
    for split in SPLITS:
        listing = list_split(root / split)
        folders[split] = {label: len(paths) for label, paths in listing.files.items()}
        for label, paths in listing.files.items():
            entries.extend(Entry(split, label, inspect_file(path)[0]) for path in paths)
    return build_report(root, folders, entries)
