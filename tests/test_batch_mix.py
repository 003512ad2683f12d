"""data.mixup_alpha and data.cutmix_alpha: the data step blends or pastes training faces and
mixes their labels; the module trains on whatever batch it is given."""

import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from mer_lightning.core.data.mix import batch_mix, mix_batch
from mer_lightning.core.errors import UserError
from mer_lightning.runs.build import build
from tests.helpers import compose_config, fast_overrides, tiny_classifier, tiny_faces

LABELS = torch.tensor([0, 1, 2, 0, 1, 2])


def is_pasted(mixed: torch.Tensor, faces: torch.Tensor) -> bool:
    """Whether every pixel of `mixed` is that of its own face or of its batch neighbour's
    (CutMix), rather than a blend of the two (MixUp)."""
    own, neighbour = faces, faces.roll(1, dims=0)
    return bool(((mixed == own) | (mixed == neighbour)).all())


def test_mixup_blends_pixels_and_labels_with_one_weight():
    images = tiny_faces(6)
    torch.manual_seed(3)
    mixed, soft = mix_batch(batch_mix(0.4, 0.0, 3), images, LABELS)
    torch.manual_seed(3)  # the same blend weight
    expected, expected_soft = v2.MixUp(alpha=0.4, num_classes=3)(images.float(), LABELS)
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(soft, expected_soft)
    assert mixed.dtype == torch.float32 and mixed.min() >= 0 and mixed.max() <= 255
    assert not torch.allclose(soft.max(dim=1).values, torch.ones(6))  # the labels were blended


def test_cutmix_pastes_a_box_from_the_neighbour_and_mixes_the_labels_by_its_area():
    faces = tiny_faces(6).float()
    torch.manual_seed(5)
    pasted, soft = mix_batch(batch_mix(0.0, 1.0, 3), faces, LABELS)
    assert is_pasted(pasted, faces) and not torch.equal(pasted, faces)
    own_share = (pasted == faces).all(dim=1).float().mean(dim=(1, 2))
    torch.testing.assert_close(soft[torch.arange(6), LABELS], own_share)


def test_with_both_each_batch_is_either_blended_or_pasted():
    faces = tiny_faces(6).float()
    mix = batch_mix(0.4, 1.0, 3)
    kinds = []
    for seed in range(20):
        torch.manual_seed(seed)
        mixed, _ = mix_batch(mix, faces, LABELS)
        kinds.append(is_pasted(mixed, faces))
    assert 4 <= sum(kinds) <= 16  # both kinds, about half each


def test_alpha_zero_is_no_mix_and_a_negative_alpha_names_its_key():
    assert batch_mix(0.0, 0.0, 3) is None
    with pytest.raises(UserError, match=r"data\.cutmix_alpha=-1 must be >= 0"):
        batch_mix(0.2, -1, 3)


@torch.no_grad()
def test_the_module_trains_on_blended_faces_and_scores_their_larger_share():
    """Soft labels and float pixels reach the loss as the data step made them."""
    module = tiny_classifier(class_weights=[1.0, 2.0, 1.0], label_smoothing=0.1)
    torch.manual_seed(3)
    blended, soft = mix_batch(batch_mix(0.4, 0.0, 3), tiny_faces(6), LABELS)
    loss = module.training_step((blended, soft), 0)
    logits = module.net(module.normalize(blended))
    weight = torch.tensor([1.0, 2.0, 1.0])
    expected = F.cross_entropy(logits, soft, weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)
    majority_hits = (logits.argmax(dim=1) == soft.argmax(dim=1)).float().mean()
    torch.testing.assert_close(module.train_acc.compute(), majority_hits)


def test_only_training_batches_are_mixed_and_a_fit_runs(synthetic_root, tmp_path):
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        "data.mixup_alpha=0.2",
        "data.cutmix_alpha=1.0",
        "module.class_weights=sqrt",
    )
    datamodule, module, trainer = build(compose_config(overrides, tmp_path))
    mixup, cutmix = datamodule.mix.transforms
    assert (type(mixup), type(cutmix)) == (v2.MixUp, v2.CutMix)
    assert (mixup.alpha, cutmix.alpha) == (pytest.approx(0.2), pytest.approx(1.0))
    seen = []
    original_step = module.training_step

    def recording_step(batch, batch_idx):
        seen.append(batch[1].ndim)
        return original_step(batch, batch_idx)

    module.training_step = recording_step
    trainer.fit(module, datamodule=datamodule)
    assert seen and set(seen) == {2}  # every training batch reached the step with mixed labels
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    batch = next(iter(datamodule.val_dataloader()))
    images, labels = datamodule.on_after_batch_transfer(batch, 0)
    assert images.dtype == torch.uint8 and labels.ndim == 1  # validation is never mixed
