"""module.mixup_alpha and module.cutmix_alpha: training steps learn from MixUp-blended or
CutMix-pasted faces and their mixed labels."""

import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from mer_lightning.core.module import EmotionClassifier
from mer_lightning.train import build
from tests.helpers import compose_config, fast_overrides, tiny_classifier, tiny_faces


def classifier(mixup_alpha: float, cutmix_alpha: float = 0.0) -> EmotionClassifier:
    return tiny_classifier(
        class_weights=[1.0, 2.0, 1.0],
        label_smoothing=0.1,
        mixup_alpha=mixup_alpha,
        cutmix_alpha=cutmix_alpha,
    )


def is_pasted(mixed: torch.Tensor, faces: torch.Tensor) -> bool:
    """Whether every pixel of `mixed` is that of its own face or of its batch neighbour's
    (CutMix), rather than a blend of the two (MixUp)."""
    own, neighbour = faces, faces.roll(1, dims=0)
    return bool(((mixed == own) | (mixed == neighbour)).all())


@torch.no_grad()
def test_the_training_loss_is_that_of_the_blended_faces_and_labels():
    images = tiny_faces(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    module = classifier(mixup_alpha=0.4)
    torch.manual_seed(3)
    loss = module.training_step((images, labels), 0)

    torch.manual_seed(3)  # the same blend weight as the step drew
    blended, soft = v2.MixUp(alpha=0.4, num_classes=3)(module.normalize(images), labels)
    weight = torch.tensor([1.0, 2.0, 1.0])
    expected = F.cross_entropy(module.net(blended), soft, weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(soft.max(dim=1).values, torch.ones(6))  # the labels were blended
    plain = F.cross_entropy(module.net(module.normalize(images)), labels, weight=weight)
    assert not torch.isclose(loss, plain)
    # train/acc scores each blend against its larger share's class.
    logits = module.net(blended)
    majority_hits = (logits.argmax(dim=1) == soft.argmax(dim=1)).float().mean()
    torch.testing.assert_close(module.train_acc.compute(), majority_hits)


@torch.no_grad()
def test_cutmix_pastes_a_box_from_the_neighbour_and_mixes_the_labels_by_its_area():
    images = tiny_faces(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    module = classifier(mixup_alpha=0.0, cutmix_alpha=1.0)
    torch.manual_seed(5)
    loss = module.training_step((images, labels), 0)

    torch.manual_seed(5)  # the same box as the step drew
    faces = module.normalize(images)
    pasted, soft = v2.CutMix(alpha=1.0, num_classes=3)(faces, labels)
    assert is_pasted(pasted, faces) and not torch.equal(pasted, faces)
    own_share = (pasted == faces).all(dim=1).float().mean(dim=(1, 2))
    torch.testing.assert_close(soft[torch.arange(6), labels], own_share)
    weight = torch.tensor([1.0, 2.0, 1.0])
    expected = F.cross_entropy(module.net(pasted), soft, weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


@torch.no_grad()
def test_with_both_each_batch_is_either_blended_or_pasted():
    images = tiny_faces(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    module = classifier(mixup_alpha=0.4, cutmix_alpha=1.0)
    faces = module.normalize(images)
    kinds = []
    for seed in range(20):
        torch.manual_seed(seed)
        mixed, _ = module.batch_mix(faces, labels)
        kinds.append(is_pasted(mixed, faces))
    assert 4 <= sum(kinds) <= 16  # both kinds, about half each


@torch.no_grad()
def test_alpha_zero_trains_on_the_faces_as_they_are():
    images = tiny_faces(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    module = classifier(mixup_alpha=0.0)
    loss = module.training_step((images, labels), 0)
    weight = torch.tensor([1.0, 2.0, 1.0])
    expected = F.cross_entropy(module(images), labels, weight=weight, label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


def test_the_config_key_reaches_the_module_and_a_fit_runs(synthetic_root, tmp_path):
    overrides = fast_overrides(
        "cnn1",
        synthetic_root,
        "module.mixup_alpha=0.2",
        "module.cutmix_alpha=1.0",
        "module.class_weights=sqrt",
    )
    datamodule, module, trainer = build(compose_config(overrides, tmp_path))
    mixup, cutmix = module.batch_mix.transforms
    assert (type(mixup), type(cutmix)) == (v2.MixUp, v2.CutMix)
    assert (mixup.alpha, cutmix.alpha) == (pytest.approx(0.2), pytest.approx(1.0))
    trainer.fit(module, datamodule=datamodule)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
