"""LightningDataModule for the Kaggle "Micro Expressions" layout."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import ConcatDataset, DataLoader, Sampler

from mer_lightning.core.data.audit import AuditReport, Entry, build_report, dedup_drops
from mer_lightning.core.data.augment import build_augmentation
from mer_lightning.core.data.batch_augment import Flagged, augment_batch, build_batch_augmentation
from mer_lightning.core.data.images import (
    DecodedImages,
    ImageSubset,
    check_policy,
    check_val_fraction,
    decode_split,
    stratified_split,
    warn_bad_files,
)
from mer_lightning.core.data.layout import SplitFiles, class_names, list_split, resolve_root
from mer_lightning.core.data.mix import batch_mix, mix_batch
from mer_lightning.core.errors import UserError


class MicroExpressionDataModule(L.LightningDataModule):
    """Train/val/test loaders over images decoded once into memory.

    Validation is a stratified, seeded share of train/ (none with val_fraction=0). Batches
    are uint8 (N, 3, S, S), or float 0-255 pixels with soft labels once MixUp/CutMix blended
    them; the LightningModule converts and normalises them on the device.
    Setup audits the files it decodes (`self.audit`) and, with dedup, leaves out duplicates
    that would distort the test accuracy or teach two labels for one picture.
    """

    def __init__(
        self,
        root: str,
        download: bool = False,
        cache_dir: str = "~/.cache/mer_lightning",
        image_size: int = 80,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        include_originals: bool = False,
        on_bad_file: str = "skip",
        dedup: bool = False,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool = False,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        augment: Mapping[str, Any] | None = None,
        batch_augment: bool = False,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise UserError(
                f"data.batch_size={batch_size} and data.eval_batch_size={eval_batch_size} "
                "must be at least 1"
            )
        check_val_fraction(val_fraction)
        check_policy(on_bad_file)
        self.save_hyperparameters(logger=False)
        # Per-sample transforms in the loader, or one batched pass after transfer to the device.
        self.augmentation = None if batch_augment else build_augmentation(augment or {}, image_size)
        self.batch_augmentation = (
            build_batch_augmentation(augment or {}, image_size) if batch_augment else None
        )
        self.mix = None  # MixUp/CutMix of training batches, built once the classes are known
        self.root: Path | None = None
        self.class_names: list[str] = []
        self.train_images: DecodedImages | None = None
        self.test_images: DecodedImages | None = None
        self.train_indices = self.val_indices = torch.empty(0, dtype=torch.long)
        self.audit: AuditReport | None = None
        self.dropped = {"test_cross_split": 0, "train_conflicting_labels": 0}

    def prepare_data(self) -> None:
        """Unpack or download the dataset when needed (once, on the main process)."""
        resolve_root(self.hparams.root, self.hparams.download, self.hparams.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        """Decode both splits into memory once and draw the validation split."""
        if self.train_images is not None:
            return
        hp = self.hparams
        self.root = resolve_root(hp.root, hp.download, hp.cache_dir)
        train_files, test_files = list_split(self.root / "train"), list_split(self.root / "test")
        self.class_names = class_names(train_files, test_files)
        train = decode_split(train_files.files, self.class_names, hp.image_size, hp.on_bad_file)
        test = decode_split(test_files.files, self.class_names, hp.image_size, hp.on_bad_file)
        warn_bad_files(train.bad_files + test.bad_files)
        self.audit = build_report(
            self.root, _folder_counts(train_files, test_files), _entries(train, test)
        )
        if hp.dedup:
            from_test, from_train = dedup_drops(self.audit)
            test, train = test.without(from_test), train.without(from_train)
            self.dropped = {
                "test_cross_split": len(from_test),
                "train_conflicting_labels": len(from_train),
            }
        self.train_images, self.test_images = train, test
        self.mix = batch_mix(hp.mixup_alpha, hp.cutmix_alpha, len(self.class_names))
        self.train_indices, self.val_indices = stratified_split(
            self.train_images.labels, hp.val_fraction, hp.split_seed
        )

    def data_summary(self) -> dict[str, Any]:
        """What the run trained and tested on, for metrics.json: audit counts, dedup drops."""
        return {
            "root": str(self.root),
            "train_images": len(self.train_indices),
            "val_images": len(self.val_indices),
            "test_images": len(self.test_images.labels),
            "skipped_bad_files": sum(
                len(split.bad_files) for split in (self.train_images, self.test_images)
            ),
            "audit": self.audit.counts(),
            "dedup": bool(self.hparams.dedup),
            "dedup_dropped": dict(self.dropped),
        }

    def split_files(self, split: str) -> list[str]:
        """The files of the "val" or "test" split, relative to the dataset root, in the order
        of their dataloader; they name each row of predictions.csv."""
        if split == "val":
            paths = [self.train_images.paths[i] for i in self.val_indices.tolist()]
        elif split == "test":
            paths = self.test_images.paths
        else:
            raise ValueError(f"split must be 'val' or 'test', not {split!r}")
        return [Path(path).relative_to(self.root).as_posix() for path in paths]

    @property
    def num_classes(self) -> int:
        """Number of classes, known after setup()."""
        return len(self.class_names)

    def train_class_counts(self) -> torch.Tensor:
        """Images per class in the training split (for class weights)."""
        labels = self.train_images.labels[self.train_indices]
        return torch.bincount(labels, minlength=self.num_classes)

    def _loader(
        self, dataset, shuffle: bool, batch_size: int, sampler: Sampler | None = None
    ) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=workers > 0,
        )

    def _eval_loader(self, dataset) -> DataLoader:
        """Validation and test: in order, and under DDP each image in exactly one process.

        Lightning's DistributedSampler would pad the shards to equal length by repeating
        images, which the metrics would then count twice.
        """
        trainer = self.trainer
        sampler = None
        if trainer is not None and trainer.world_size > 1:
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return self._loader(dataset, False, self.hparams.eval_batch_size, sampler)

    def train_dataloader(self) -> DataLoader:
        """Augmented training images (plus the originals with data.include_originals).

        With data.batch_augment the loader yields (images, labels, augment flags) and
        `on_after_batch_transfer` augments the flagged images as one batch on the device.
        """
        augmented = ImageSubset(self.train_images, self.train_indices, self.augmentation)
        originals = ImageSubset(self.train_images, self.train_indices)
        if self.hparams.batch_augment:
            augmented, originals = Flagged(augmented, True), Flagged(originals, False)
        dataset = (
            ConcatDataset([augmented, originals]) if self.hparams.include_originals else augmented
        )
        return self._loader(dataset, shuffle=True, batch_size=self.hparams.batch_size)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Batched augmentation, then MixUp/CutMix, of training batches on their device;
        others pass through."""
        batch = augment_batch(self.batch_augmentation, batch)
        if self.mix is not None and self.trainer is not None and self.trainer.training:
            batch = mix_batch(self.mix, *batch)
        return batch

    def train_eval_dataloader(self) -> DataLoader:
        """Training images without augmentation, for the paper's "train accuracy"."""
        dataset = ImageSubset(self.train_images, self.train_indices)
        return self._loader(dataset, shuffle=False, batch_size=self.hparams.eval_batch_size)

    def val_dataloader(self) -> DataLoader:
        """The held-out share of train/."""
        return self._eval_loader(ImageSubset(self.train_images, self.val_indices))

    def test_dataloader(self) -> DataLoader:
        """Every image of test/."""
        indices = torch.arange(len(self.test_images.labels))
        return self._eval_loader(ImageSubset(self.test_images, indices))


def _folder_counts(*splits: SplitFiles) -> dict[str, dict[str, int]]:
    """Files per class folder of each split (split name = folder name), for the audit."""
    return {s.root.name: {label: len(paths) for label, paths in s.files.items()} for s in splits}


def _entries(train: DecodedImages, test: DecodedImages) -> list[Entry]:
    """Audit entries of every decoded file, broken ones included."""
    return [
        Entry(split, label, info)
        for split, decoded in (("train", train), ("test", test))
        for label, info in decoded.files
    ]
