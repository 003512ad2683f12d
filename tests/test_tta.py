"""module.tta_hflip and module.tta_shift: validation, test, predict and the predict CLI score
the average over the mirror and the moved faces."""

import dataclasses

import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.core.models.tta import shifted_views
from mer_lightning.core.module import EmotionClassifier
from tests.helpers import TINY_SIZE, tiny_classifier, tiny_faces


def classifier(tta_hflip: bool, tta_shift: int = 0) -> EmotionClassifier:
    return tiny_classifier(tta_hflip=tta_hflip, tta_shift=tta_shift).eval()


@torch.no_grad()
def test_evaluation_logits_average_each_face_and_its_mirror():
    images = tiny_faces()
    plain, mirrored = classifier(tta_hflip=False), classifier(tta_hflip=True)
    one_view = plain.net(plain.normalize(images))
    mirror_view = plain.net(plain.normalize(images.flip(-1)))

    torch.testing.assert_close(plain.evaluation_logits(images), one_view)
    torch.testing.assert_close(mirrored.evaluation_logits(images), (one_view + mirror_view) / 2)
    assert not torch.allclose(one_view, mirror_view)  # the net is not mirror-symmetric
    probabilities, labels = mirrored.predict_step((images, torch.arange(4) % 3), 0)
    torch.testing.assert_close(probabilities, ((one_view + mirror_view) / 2).softmax(dim=1))
    # Training keeps one view per step: forward is the plain net either way.
    torch.testing.assert_close(mirrored(images), one_view)


@torch.no_grad()
def test_a_checkpoint_predicts_as_its_run_was_tested(tmp_path):
    module = classifier(tta_hflip=True)
    path = tmp_path / "mirrored.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    images = tiny_faces()

    loaded = load_checkpoint(path)

    assert loaded.tta_hflip
    torch.testing.assert_close(
        loaded.predict_proba(images), module.evaluation_logits(images).softmax(dim=1)
    )
    one_view = dataclasses.replace(loaded, tta_hflip=False)
    assert not torch.allclose(one_view.predict_proba(images), loaded.predict_proba(images))
    # Checkpoints written before the key existed load as one view.
    hparams = {k: v for k, v in module.hparams.items() if k != "tta_hflip"}
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict()}, path)
    assert not load_checkpoint(path).tta_hflip


def test_shifted_views_move_the_face_and_reflect_the_uncovered_border():
    ramp = torch.arange(6.0).expand(1, 1, 6, 6)  # value = column index
    same, up, down, left, right = shifted_views(ramp, 2)

    torch.testing.assert_close(same, ramp)
    torch.testing.assert_close(up, ramp)  # columns do not change when the face moves up or down
    torch.testing.assert_close(down, ramp)
    assert right[0, 0, 0].tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0]
    assert left[0, 0, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 4.0, 3.0]
    rows = ramp.transpose(-1, -2)
    assert shifted_views(rows, 2)[2][0, 0, :, 0].tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0]
    assert shifted_views(ramp, 0) == [ramp]


@torch.no_grad()
@pytest.mark.parametrize("tta_hflip", [False, True])
def test_evaluation_logits_average_the_moved_faces_and_their_mirrors(tta_hflip):
    images = tiny_faces()
    module = classifier(tta_hflip=tta_hflip, tta_shift=2)
    views = shifted_views(module.normalize(images), 2)
    if tta_hflip:
        views += [view.flip(-1) for view in views]
    expected = torch.stack([module.net(view) for view in views]).mean(dim=0)

    assert len(views) == (10 if tta_hflip else 5)
    torch.testing.assert_close(module.evaluation_logits(images), expected)
    without_shift = classifier(tta_hflip=tta_hflip).evaluation_logits(images)
    assert not torch.allclose(module.evaluation_logits(images), without_shift)
    torch.testing.assert_close(module(images), module.net(module.normalize(images)))


@torch.no_grad()
def test_a_checkpoint_keeps_its_shift_averaging(tmp_path):
    module = classifier(tta_hflip=True, tta_shift=2)
    path = tmp_path / "shifted.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    images = tiny_faces()

    loaded = load_checkpoint(path)

    assert loaded.tta_shift == 2
    torch.testing.assert_close(
        loaded.predict_proba(images), module.evaluation_logits(images).softmax(dim=1)
    )
    hparams = {k: v for k, v in module.hparams.items() if k != "tta_shift"}
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict()}, path)
    assert load_checkpoint(path).tta_shift == 0  # written before the key existed


@pytest.mark.parametrize("shift", [-1, TINY_SIZE // 2, 1.5, True])
def test_a_shift_no_face_can_take_is_refused_with_the_range(shift):
    with pytest.raises(UserError, match=r"module\.tta_shift=.* from 0 \(off\) to 7"):
        tiny_classifier(tta_shift=shift)
