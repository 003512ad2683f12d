"""callbacks.distill: a net learns the labels and the softened predictions of trained teachers."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.nn import functional as F

from mer_lightning.core.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.core.data.normalize import channel_stats, normalize_images
from mer_lightning.core.errors import UserError
from mer_lightning.core.models import build_net
from mer_lightning.evaluate import main as evaluate_main
from mer_lightning.recipes.distill import Distillation
from mer_lightning.runs.build import build, find_callback
from tests.helpers import (
    TINY_ARCH,
    TINY_SIZE,
    compose_config,
    fast_overrides,
    tiny_classifier,
    tiny_faces,
    train_run,
)


def distillation(teachers, temperature: float, weight: float, mirror: bool = False):
    """The callback with teachers already loaded, as its setup leaves it."""
    callback = Distillation(["in-memory"], temperature, weight, mirror)
    callback.teachers = tuple(teachers)
    return callback


def in_memory_teacher(seed: int, mean: tuple, std: tuple) -> LoadedModel:
    torch.manual_seed(seed)
    return LoadedModel(
        net=build_net(TINY_ARCH).eval(),
        class_names=["anger", "fear", "surprise"],
        image_size=TINY_SIZE,
        mean=mean,
        std=std,
        arch=TINY_ARCH,
    )


@torch.no_grad()
def test_the_loss_mixes_cross_entropy_with_the_teachers_softened_mean_prediction():
    images = tiny_faces(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    # Teachers normalised unlike the student: each must still see the same pixels.
    teachers = (
        in_memory_teacher(1, (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)),
        in_memory_teacher(2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    )
    temperature, weight = 3.0, 0.25
    module = tiny_classifier(label_smoothing=0.1, mean=(0.4, 0.4, 0.4), std=(0.3, 0.3, 0.3))
    module.objective = distillation(teachers, temperature, weight).objective  # as its setup does
    loss = module.training_step((images, labels), 0)

    soft = torch.stack(
        [(t.net(t.normalize(images)) / temperature).softmax(dim=1) for t in teachers]
    ).mean(dim=0)
    student = module(images)
    log_student = F.log_softmax(student / temperature, dim=1)
    kl = (soft * (soft.log() - log_student)).sum(dim=1).mean()
    cross_entropy = F.cross_entropy(student, labels, label_smoothing=0.1)
    expected = (1 - weight) * cross_entropy + weight * temperature**2 * kl
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, cross_entropy)


@torch.no_grad()
def test_a_mirrored_teacher_teaches_the_mean_logits_of_each_face_and_its_mirror():
    images = tiny_faces(4)
    teacher = in_memory_teacher(1, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    temperature = 2.0

    soft = distillation((teacher,), temperature, 0.5, mirror=True).soft_targets(images)

    own = teacher.normalize(images)
    logits = (teacher.net(own) + teacher.net(own.flip(-1))) / 2
    torch.testing.assert_close(soft, (logits / temperature).softmax(dim=1))
    one_view = distillation((teacher,), temperature, 0.5).soft_targets(images)
    assert not torch.allclose(soft, one_view, atol=1e-4)


@torch.no_grad()
def test_teachers_score_blended_pixels_and_a_repeated_step_reuses_their_targets():
    """MixUp hands float 0-255 pixels to the objective; an optimizer that evaluates a step's
    closure twice (SAM) gets the same targets without another teacher forward."""
    teacher = in_memory_teacher(1, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    callback = distillation((teacher,), 2.0, 0.5)
    blended = tiny_faces(4).float() * 0.7 + tiny_faces(4).flip(0).float() * 0.3
    expected = (
        teacher.net(normalize_images(blended, *map(channel_stats, (teacher.mean, teacher.std))))
        / 2.0
    ).softmax(dim=1)
    torch.testing.assert_close(callback.soft_targets(blended), expected)
    calls = []
    teacher.net.register_forward_hook(lambda *args: calls.append(1))
    logits = torch.zeros(4, 3)
    first, _ = callback.objective(torch.tensor(1.0), logits, blended)
    second, _ = callback.objective(torch.tensor(1.0), logits, blended)
    assert len(calls) == 1 and torch.equal(first, second)


class RecordTeachers(L.Callback):
    """Keeps the teachers' weights as fit starts, to show they never change."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def on_fit_start(self, trainer, pl_module) -> None:
        (teacher,) = find_callback(trainer, Distillation).teachers
        self.seen.append({k: v.clone() for k, v in teacher.net.state_dict().items()})


@pytest.fixture(scope="module")
def teacher_run(synthetic_root, tmp_path_factory) -> Path:
    """A finished cnn1 run on the synthetic dataset: the teacher's run dir."""
    return train_run(tmp_path_factory.mktemp("teacher") / "run", "cnn1", synthetic_root)


def teacher_checkpoint(run_dir: Path) -> Path:
    (checkpoint,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    return checkpoint


def student_config(synthetic_root, tmp_path, teacher: Path, *extra: str):
    overrides = fast_overrides(
        "cnn2", synthetic_root, f"callbacks.distill.teachers=[{teacher}]", *extra
    )
    return compose_config(overrides, tmp_path)


@pytest.mark.slow
def test_a_student_fits_against_a_trained_run_that_stays_frozen_and_out_of_its_weights(
    synthetic_root, teacher_run, tmp_path
):
    teacher = teacher_checkpoint(teacher_run)
    cfg = student_config(
        synthetic_root,
        tmp_path,
        teacher,
        "callbacks.distill.temperature=2",
        "callbacks.distill.mirror=true",
    )
    datamodule, module, trainer = build(cfg)
    callback = find_callback(trainer, Distillation)
    assert callback.temperature == 2.0 and callback.weight == 0.5 and callback.mirror
    seen = []
    trainer.callbacks.append(RecordTeachers(seen))

    trainer.fit(module, datamodule=datamodule)

    (loaded,) = callback.teachers
    before = seen[0]
    assert module.objective is None  # the recipe leaves the module as it found it

    assert torch.isfinite(trainer.callback_metrics["train/distill_loss"])
    for key, value in loaded.net.state_dict().items():
        torch.testing.assert_close(value, before[key])  # the teacher did not learn
    assert not loaded.net.training
    own = {f"net.{key}" for key in module.net.state_dict()} | {"train_images_seen"}
    assert set(module.state_dict()) == own  # no teacher weights in the student's
    saved = tmp_path / "student.ckpt"
    trainer.save_checkpoint(saved)
    student = load_checkpoint(saved)  # a plain cnn2 checkpoint: predict needs no teacher
    assert student.arch["_target_"] == module.hparams.arch["_target_"]
    assert "distill" not in torch.load(saved, weights_only=True)["hyper_parameters"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "refusal"),
    [
        # Another split: the teacher trained on some of this run's validation faces.
        ("data.split_seed=7", r"callbacks\.distill\.teachers\[0\]=.*other images"),
        ("data.image_size=24", r"trained on 32 px faces .* data\.image_size=24"),
    ],
)
def test_a_teacher_unlike_the_student_is_refused_naming_the_fix(
    synthetic_root, teacher_run, tmp_path, override, refusal
):
    cfg = student_config(synthetic_root, tmp_path, teacher_checkpoint(teacher_run), override)
    datamodule, module, trainer = build(cfg)
    with pytest.raises(UserError, match=refusal):
        trainer.fit(module, datamodule=datamodule)  # checked before the first step


def test_a_missing_teacher_names_the_key(synthetic_root, tmp_path):
    cfg = student_config(synthetic_root, tmp_path, tmp_path / "gone.ckpt")
    datamodule, module, trainer = build(cfg)
    with pytest.raises(UserError, match=r"callbacks\.distill\.teachers\[0\]=.*gone\.ckpt is not"):
        trainer.fit(module, datamodule=datamodule)


@pytest.mark.slow
def test_a_distilled_run_is_tested_again_after_its_teacher_is_gone(
    synthetic_root, teacher_run, tmp_path
):
    # A sweep job's dir name: its "=" and "," need the quotes the README asks for.
    teacher = tmp_path / "0_model=cnn1,seed=1" / "checkpoints" / "epoch000.ckpt"
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(teacher_checkpoint(teacher_run).read_bytes())
    (teacher.parent.parent / "predictions.csv").write_bytes(
        (teacher_run / "predictions.csv").read_bytes()
    )
    student = train_run(
        tmp_path / "student", "cnn2", synthetic_root, f'callbacks.distill.teachers=["{teacher}"]'
    )
    trained = json.loads((student / "metrics.json").read_text())
    assert "train/distill_loss" in trained["history"][0]  # it did learn from the teacher
    teacher.unlink()  # evaluation trains nothing, so it needs no teacher

    assert evaluate_main([str(student)]) == 0
    evaluated = json.loads((student / "evaluate" / "default" / "metrics.json").read_text())
    assert evaluated["test_acc"] == pytest.approx(trained["test_acc"])
