"""Batched augmentation draws from the same transforms as the per-sample torchvision pipeline."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from mer_lightning.core.data.augment import build_augmentation
from mer_lightning.core.data.batch_augment import (
    BatchAugmentation,
    Flagged,
    augment_batch,
    build_batch_augmentation,
)
from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.core.errors import UserError

ALL_ON = {
    "crop": {"enabled": True, "padding": 4, "padding_mode": "reflect"},
    "hflip": {"enabled": True, "p": 0.5},
    "blur": {"enabled": True, "p": 0.5, "kernel_size": 3, "sigma": [0.1, 1.0]},
    "rotation": {"enabled": True, "degrees": 10},
}


def images(n: int = 6, size: int = 12) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge", "constant"])
def test_crop_and_flip_is_a_crop_of_the_padded_image(mode):
    batch = images().to(torch.uint8)
    pad, size = 3, batch.shape[-1]
    out = BatchAugmentation(size, crop_padding=pad, crop_mode=mode, hflip_p=0.5).crop_and_flip(
        batch
    )
    for image, result in zip(batch, out, strict=True):
        padded = TF.pad(image, [pad], padding_mode=mode, fill=0)
        crops = [padded[:, i : i + size, j : j + size] for i in range(7) for j in range(7)]
        assert any(torch.equal(result, c) or torch.equal(result, c.flip(-1)) for c in crops)


def test_flip_with_p_one_mirrors_every_image():
    batch = images().to(torch.uint8)
    assert torch.equal(BatchAugmentation(12, hflip_p=1.0).crop_and_flip(batch), batch.flip(-1))


def test_blur_matches_torchvision_gaussian_blur():
    batch = images().to(torch.uint8)
    out = BatchAugmentation(12, blur_p=1.0, blur_sigma=(0.7, 0.7)).blur(batch)
    expected = torch.stack([TF.gaussian_blur(image, [3, 3], [0.7, 0.7]) for image in batch])
    assert torch.equal(out, expected)


@pytest.mark.parametrize("degrees", [0.0, 7.0, -9.0, 90.0])
def test_rotation_matches_torchvision_nearest_rotation(degrees):
    batch = images(4, 40).to(torch.uint8)
    out = BatchAugmentation(40, rotation_degrees=10).rotate(batch, torch.full((4,), degrees))
    expected = torch.stack(
        [TF.rotate(image, degrees, interpolation=v2.InterpolationMode.NEAREST) for image in batch]
    )
    assert torch.equal(out, expected)


def test_mask_leaves_unflagged_images_untouched():
    batch = images().to(torch.uint8)
    augmentation = build_batch_augmentation(ALL_ON, 12)
    mask = torch.tensor([True, False, True, False, False, True])
    out = augmentation(batch, mask)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    assert torch.equal(out[~mask], batch[~mask])
    assert torch.equal(augmentation(batch, torch.zeros(6, dtype=torch.bool)), batch)
    torch.manual_seed(3)
    all_flagged = augmentation(batch, torch.ones(6, dtype=torch.bool))
    torch.manual_seed(3)
    assert torch.equal(all_flagged, augmentation(batch))  # every image flagged: all augmented


def test_switches_and_bad_padding_mode():
    assert build_batch_augmentation({}, 12) is None
    assert build_batch_augmentation({"hflip": {"enabled": True}}, 12).crop_padding is None
    with pytest.raises(UserError, match="padding_mode=wrap"):
        build_batch_augmentation(
            {"crop": {"enabled": True, "padding": 2, "padding_mode": "wrap"}}, 12
        )


def test_flagged_batches_lose_their_flags_after_transfer():
    batch = (images(2).to(torch.uint8), torch.tensor([0, 1]), torch.tensor([True, False]))
    out_images, labels = augment_batch(build_batch_augmentation(ALL_ON, 12), batch)
    assert torch.equal(out_images[1], batch[0][1]) and torch.equal(labels, batch[1])
    plain = (batch[0], batch[1])
    assert augment_batch(build_batch_augmentation(ALL_ON, 12), plain) is plain
    assert Flagged([(batch[0][0], 0)], True)[0][2] is True


def test_datamodule_batch_augment_keeps_originals_and_uint8(synthetic_root):
    dm = MicroExpressionDataModule(
        root=str(synthetic_root),
        image_size=32,
        batch_size=500,
        include_originals=True,
        augment=ALL_ON,
        batch_augment=True,
    )
    dm.setup("fit")
    assert dm.augmentation is None and dm.batch_augmentation is not None
    batch = next(iter(dm.train_dataloader()))
    assert len(batch) == 3 and int(batch[2].sum()) == len(dm.train_indices)
    out_images, labels = dm.on_after_batch_transfer(batch, 0)
    assert out_images.dtype == torch.uint8 and out_images.shape == batch[0].shape
    assert torch.equal(out_images[~batch[2]], batch[0][~batch[2]])
    assert not torch.equal(out_images[batch[2]], batch[0][batch[2]])
    val = next(iter(dm.val_dataloader()))
    assert dm.on_after_batch_transfer(val, 0) is val


def erased_boxes(before: torch.Tensor, after: torch.Tensor, value: int) -> list[tuple[int, int]]:
    """(height, width) of the erased rectangle of each image, (0, 0) when untouched; asserts
    the changed pixels are one solid rectangle of `value` in every channel."""
    boxes = []
    for image, result in zip(before, after, strict=True):
        changed = (image != result).any(dim=0)
        if not changed.any():
            boxes.append((0, 0))
            continue
        rows, cols = changed.any(dim=1).nonzero()[:, 0], changed.any(dim=0).nonzero()[:, 0]
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert changed[top:bottom, left:right].all()
        assert (result[:, top:bottom, left:right] == value).all()
        boxes.append((int(bottom - top), int(right - left)))
    return boxes


def test_erasing_blanks_one_rectangle_of_the_configured_size_and_fill():
    torch.manual_seed(0)
    batch = torch.randint(0, 100, (400, 3, 40, 40), dtype=torch.uint8)  # never the fill
    augmentation = build_batch_augmentation(
        {"erasing": {"enabled": True, "p": 1.0, "scale": [0.05, 0.2], "value": 200}}, 40
    )
    boxes = erased_boxes(batch, augmentation(batch), 200)
    areas = torch.tensor([h * w / 1600 for h, w in boxes])
    assert areas.min() > 0.03 and areas.max() < 0.23  # scale, give or take rounding h and w
    aspects = torch.tensor([h / w for h, w in boxes])
    assert aspects.min() < 0.6 and aspects.max() > 1.6  # ratio spans (0.3, 3.3)
    assert len({(h, w) for h, w in boxes}) > 50  # a new rectangle per image


def test_erasing_matches_torchvision_random_erasing_in_distribution():
    """Erased share and box area as v2.RandomErasing draws them, per-sample, same config."""
    config = {"erasing": {"enabled": True, "p": 0.5}}
    torch.manual_seed(1)
    batch = torch.randint(0, 100, (1500, 3, 24, 24), dtype=torch.uint8)
    ours = erased_boxes(batch, build_batch_augmentation(config, 24)(batch), 128)
    transform = build_augmentation(config, 24)
    theirs = erased_boxes(batch, torch.stack([transform(image) for image in batch]), 128)

    def share_and_mean_area(boxes):
        areas = torch.tensor([h * w for h, w in boxes if h], dtype=torch.float)
        return len(areas) / len(boxes), float(areas.mean()) / 576

    (share, area), (ref_share, ref_area) = share_and_mean_area(ours), share_and_mean_area(theirs)
    assert abs(share - ref_share) < 0.06 and abs(share - 0.5) < 0.06
    assert abs(area - ref_area) < 0.02  # both near the mean of U(0.02, 0.33), 0.175


def test_erasing_off_by_default_and_bad_values_name_their_key():
    assert build_batch_augmentation({"erasing": {"enabled": False}}, 12) is None
    batch = images().to(torch.uint8)
    never = build_batch_augmentation({"erasing": {"enabled": True, "p": 0.0}}, 12)
    assert torch.equal(never(batch), batch)
    for key, value, match in [
        ("scale", [0.5, 1.2], r"erasing\.scale=\[0\.5, 1\.2\]"),
        ("ratio", [2.0, 1.0], r"erasing\.ratio=\[2\.0, 1\.0\]"),
        ("p", 1.5, r"erasing\.p=1\.5"),
        ("value", 300, r"erasing\.value=300"),
        ("scale", 0.2, r"erasing\.scale=0\.2 must be a \[low, high\] pair"),
    ]:
        erasing = {"enabled": True, key: value}
        with pytest.raises(UserError, match=match):
            build_batch_augmentation({"erasing": erasing}, 12)
        with pytest.raises(UserError, match=match):
            build_augmentation({"erasing": erasing}, 12)
