"""The datamodule: finding the Kaggle layout, its errors, the split, augmentation, caching."""

import shutil
import zipfile

import pytest
import torch

from mer_lightning.core.data import layout
from mer_lightning.core.data.augment import build_augmentation
from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.data.images import stratified_split
from mer_lightning.core.errors import UserError
from tests.helpers import CLASSES

ALL_ON = {
    "crop": {"enabled": True, "padding": 4, "padding_mode": "reflect"},
    "hflip": {"enabled": True, "p": 0.5},
    "blur": {"enabled": True, "p": 1.0, "kernel_size": 3, "sigma": [0.1, 1.0]},
    "rotation": {"enabled": True, "degrees": 10},
}


def datamodule(root, **kwargs) -> MicroExpressionDataModule:
    dm = MicroExpressionDataModule(root=str(root), image_size=32, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_missing_root_names_path_layout_and_download(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError) as error:
        datamodule(missing)
    message = str(error.value)
    assert f"data.root={missing}" in message
    assert "Micro_Expressions/{train,test}/<class>/*.jpg" in message
    assert "data.download=true" in message and "kaggle datasets download" in message


def test_folder_without_splits_is_rejected(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(UserError, match="has no train/ and test/ folders"):
        datamodule(tmp_path)


def test_root_may_be_the_parent_of_the_split_folders(synthetic_root):
    dm = datamodule(synthetic_root.parent)
    assert dm.class_names == list(CLASSES)


def test_zip_is_unpacked_once_into_the_cache(synthetic_root, tmp_path):
    archive = tmp_path / "micro-expressions.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in synthetic_root.rglob("*.jpg"):
            zipped.write(path, path.relative_to(synthetic_root.parent))
    cache = tmp_path / "cache"
    first = layout.resolve_root(archive, download_missing=False, cache_dir=cache)
    marker = next(cache.glob("*/.unpacked"))
    stamp = marker.stat().st_mtime_ns
    second = layout.resolve_root(archive, download_missing=False, cache_dir=cache)
    assert first == second and first.is_relative_to(cache)
    assert marker.stat().st_mtime_ns == stamp
    assert len(list((first / "train").rglob("*.jpg"))) == 7 * 14


def test_non_zip_file_root_is_rejected(tmp_path):
    bogus = tmp_path / "data.txt"
    bogus.write_text("not a dataset")
    with pytest.raises(UserError, match="is a file but not a zip"):
        datamodule(bogus)


def test_download_uses_kagglehub_when_root_is_missing(synthetic_root, tmp_path, monkeypatch):
    import kagglehub

    asked = []

    def fake_download(handle):
        asked.append(handle)
        return str(synthetic_root.parent)

    monkeypatch.setattr(kagglehub, "dataset_download", fake_download)
    dm = datamodule(tmp_path / "absent", download=True)
    assert asked and asked[0] == "kmirfan/micro-expressions"
    assert dm.class_names == list(CLASSES)


def test_class_mismatch_lists_the_difference(synthetic_root, tmp_path):
    copy = tmp_path / "Micro_Expressions"
    shutil.copytree(synthetic_root, copy)
    shutil.copytree(copy / "train" / "fear", copy / "train" / "contempt")
    shutil.rmtree(copy / "test" / "neutral")
    with pytest.raises(UserError) as error:
        datamodule(copy)
    message = str(error.value)
    assert "only in train: ['contempt', 'neutral']" in message
    assert "only in test: none" in message


def test_validation_split_is_stratified_and_seeded():
    labels = torch.arange(7).repeat_interleave(torch.tensor([100, 40, 30, 120, 40, 80, 60]))
    kept, held = stratified_split(labels, 0.1, seed=1)
    assert torch.equal(torch.cat([kept, held]).sort().values, torch.arange(len(labels)))
    assert torch.bincount(labels[held]).tolist() == [10, 4, 3, 12, 4, 8, 6]
    assert torch.equal(held, stratified_split(labels, 0.1, seed=1)[1])
    assert not torch.equal(held, stratified_split(labels, 0.1, seed=2)[1])


def test_val_fraction_outside_unit_interval_names_the_key(synthetic_root):
    with pytest.raises(UserError, match=r"data.val_fraction=1.5 must be in \[0, 1\)"):
        MicroExpressionDataModule(root=str(synthetic_root), val_fraction=1.5)


def test_val_fraction_zero_trains_on_every_image(synthetic_root):
    dm = datamodule(synthetic_root, val_fraction=0.0)
    assert len(dm.train_indices) == 7 * 14 and len(dm.val_indices) == 0
    assert dm.split_files("val") == []
    assert dm.train_class_counts().tolist() == [14] * 7


def test_images_are_decoded_once_and_batches_are_uint8(synthetic_root):
    dm = datamodule(synthetic_root, batch_size=8)
    decoded = dm.train_images
    dm.setup("test")
    assert dm.train_images is decoded
    assert decoded.images.dtype == torch.uint8 and decoded.images.shape[1:] == (3, 32, 32)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 32, 32)
    assert labels.dtype == torch.long
    assert len(dm.val_dataloader().dataset) == 7 and len(dm.test_dataloader().dataset) == 42


def test_include_originals_trains_on_augmented_and_original_copies(synthetic_root):
    plain = datamodule(synthetic_root, augment=ALL_ON)
    both = datamodule(synthetic_root, augment=ALL_ON, include_originals=True)
    assert len(both.train_dataloader().dataset) == 2 * len(plain.train_dataloader().dataset)


def test_each_augmentation_has_a_switch():
    assert build_augmentation({}, 32) is None
    assert len(build_augmentation(ALL_ON, 32).transforms) == 4
    for name in ALL_ON:
        one_off = {**ALL_ON, name: {**ALL_ON[name], "enabled": False}}
        assert len(build_augmentation(one_off, 32).transforms) == 3
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = build_augmentation(ALL_ON, 32)(image)
    assert out.shape == image.shape and out.dtype == torch.uint8


def test_real_dataset_counts_and_classes(real_root):
    dm = MicroExpressionDataModule(root=str(real_root), val_fraction=0.1)
    dm.setup("fit")
    assert dm.class_names == list(CLASSES)
    assert len(dm.train_images.labels) == 7600 and len(dm.test_images.labels) == 1860
    assert torch.bincount(dm.test_images.labels).tolist() == [350, 160, 120, 480, 160, 330, 260]
    held_per_class = torch.bincount(dm.train_images.labels[dm.val_indices]).tolist()
    train_per_class = [1411, 662, 479, 1950, 644, 1369, 1085]
    assert held_per_class == [round(0.1 * n) for n in train_per_class]
