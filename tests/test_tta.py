"""module.tta_hflip: validation, test, predict and the predict CLI score the mirror average."""

import dataclasses

import torch

from mer_lightning.checkpoint import load_checkpoint
from mer_lightning.module import EmotionClassifier
from tests.helpers import tiny_classifier, tiny_faces


def classifier(tta_hflip: bool) -> EmotionClassifier:
    return tiny_classifier(tta_hflip=tta_hflip).eval()


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
