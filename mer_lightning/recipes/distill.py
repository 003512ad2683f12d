"""Knowledge distillation: a net learns the labels and the softened predictions of teachers.

An ensemble of runs scores higher than any one of its members (docs/results) but costs a
forward pass per member. Distillation (Hinton et al., 2015) trains one net to match, besides
the labels, the teachers' class probabilities softened by a temperature, which also say how
alike the classes look to them; it is the standard way to carry an ensemble's accuracy into a
single deployable net. Teachers are finished runs of this project on the same training split.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F

from mer_lightning.core.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.core.data.normalize import channel_stats, normalize_images
from mer_lightning.core.errors import UserError
from mer_lightning.core.models.tta import averaged_logits
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import read_predictions
from mer_lightning.recipes.teachers import ensure_teacher

KEY = "callbacks.distill.teachers"
TEACHERS_FILE = "teachers.json"  # in the student's run dir: the checkpoints it learnt from
LEGACY_KEY = "module.distill.teachers"  # where run configs named teachers before the callback


class Distillation(L.Callback):
    """Trains the student on the labels and on frozen teachers' softened predictions.

    A callback, so that the LightningModule never names it: at fit start it loads and checks
    the teachers, then sets the module's training `objective` to
    `(1 - weight) * label loss + weight * KL(teachers || student)`, both at `temperature`,
    on the very batch the student sees (augmented, MixUp-blended). Teachers are checkpoint
    paths (`teachers`) or a run named by configuration (`teacher`: experiment, model, seed),
    trained once into `cache_dir` and reused (recipes/teachers.py). With neither it does
    nothing. Teachers are held here, not by the module, so they stay out of its checkpoint;
    the checkpoints it learnt from are written to the run dir's teachers.json.
    """

    def __init__(
        self,
        teachers: Sequence[str] = (),
        temperature: float = 4.0,
        weight: float = 0.5,
        mirror: bool = False,
        teacher: Mapping[str, Any] | None = None,
        cache_dir: str = "outputs/teachers",
    ) -> None:
        self.paths = [str(path) for path in teachers or ()]
        self.spec = dict(teacher) if teacher else None
        self.cache_dir = Path(cache_dir)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.mirror = bool(mirror)  # teach each face's and its mirror's mean logits
        self.teachers: tuple[LoadedModel, ...] = ()
        # The last batch's images and their soft targets: an optimizer that evaluates a
        # step's closure twice (SAM) is taught the same targets without a second forward.
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not (self.paths or self.spec):
            return
        datamodule = trainer.datamodule
        if self.spec:
            named = ensure_teacher(self.spec, str(datamodule.hparams.root), self.cache_dir)
            self.paths = [*self.paths, str(named)]
            self.spec = None  # resolved: a second fit of this Trainer reuses the path
        if trainer.is_global_zero:
            record = {"teachers": self.paths}
            (Path(trainer.default_root_dir) / TEACHERS_FILE).write_text(json.dumps(record) + "\n")
        self.teachers = load_teachers(
            self.paths,
            class_names=datamodule.class_names,
            image_size=int(pl_module.hparams.image_size),
            val_files=datamodule.split_files("val"),
        )
        pl_module.objective = self.objective

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for teacher in self.teachers:
            teacher.net.to(pl_module.device)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.teachers:
            pl_module.objective = None
            self._last = None

    def objective(
        self, label_loss: torch.Tensor, logits: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The module's training loss with the teachers' term mixed in (see the class)."""
        if self._last is None or self._last[0] is not images:
            self._last = (images, self.soft_targets(images))
        distill_loss = self.loss(logits, self._last[1])
        loss = (1 - self.weight) * label_loss + self.weight * distill_loss
        return loss, {"distill_loss": distill_loss}

    @torch.no_grad()
    def soft_targets(self, images: torch.Tensor) -> torch.Tensor:
        """The teachers' mean class probabilities at the temperature for a batch of images
        (uint8, or float 0-255 pixels once blended), each teacher fed them in its own
        normalisation. With `mirror`, each teacher's logits are those of the face and its
        mirror averaged, as a run with module.tta_hflip predicts: a steadier teacher for one
        more forward."""
        probabilities = []
        for teacher in self.teachers:
            own_mean = channel_stats(teacher.mean).to(images.device)
            own_std = channel_stats(teacher.std).to(images.device)
            inputs = normalize_images(images, own_mean, own_std)
            logits = averaged_logits(teacher.net, inputs, hflip=self.mirror).float()
            probabilities.append((logits / self.temperature).softmax(dim=1))
        return torch.stack(probabilities).mean(dim=0)

    def loss(self, student_logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
        """KL(teachers || student) at the temperature, times its square so that the term's
        gradients keep the scale of the cross-entropy's whatever the temperature."""
        log_student = F.log_softmax(student_logits.float() / self.temperature, dim=1)
        kl = F.kl_div(log_student, soft_targets, reduction="batchmean")
        return kl * self.temperature**2


def load_teachers(
    paths: Sequence[str], class_names: Sequence[str], image_size: int, val_files: Sequence[str]
) -> tuple[LoadedModel, ...]:
    """The teacher checkpoints at `paths`, checked against the student's classes, input size
    and validation split."""
    loaded = []
    for index, path in enumerate(paths):
        where = f"{KEY}[{index}]={path}"
        file = _checkpoint_file(where, path)
        try:
            teacher = load_checkpoint(file)
        except UserError as error:
            raise UserError(f"{where}: {error}") from error
        if teacher.class_names != list(class_names):
            raise UserError(
                f"{where} predicts the classes {teacher.class_names}, not this run's "
                f"{list(class_names)}; use a teacher trained on the same dataset"
            )
        if teacher.image_size != image_size:
            raise UserError(
                f"{where} was trained on {teacher.image_size} px faces and this run feeds "
                f"{image_size} px (data.image_size); use a teacher trained with "
                f"data.image_size={image_size}"
            )
        _check_same_val_split(where, file, val_files)
        loaded.append(teacher)
    return tuple(loaded)


def teachers_of(config: Any, run_dir: Path | None = None) -> list[str]:
    """The teacher checkpoints a run learnt from: those its run dir's teachers.json records
    (teachers named by configuration included), else those its (unresolved) config names,
    under the callback's key or, for runs of before it, the module's; [] if none."""
    from omegaconf import OmegaConf

    if run_dir is not None and (run_dir / TEACHERS_FILE).is_file():
        return list(json.loads((run_dir / TEACHERS_FILE).read_text())["teachers"])
    for key in (KEY, LEGACY_KEY):
        found = OmegaConf.select(config, key, default=None, throw_on_resolution_failure=False)
        if found:
            return [str(teacher) for teacher in found]
    return []


def teacher_run_dir(checkpoint: Path) -> Path:
    """The run dir of a teacher's checkpoint (`<run>/checkpoints/<name>.ckpt`): where its
    predictions.csv and metrics.json are."""
    return checkpoint.parent.parent


def _checkpoint_file(where: str, path: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"{where} is not a file; give the best checkpoint of a finished run, e.g. "
            "outputs/runs/<date>/<time>/checkpoints/epoch039.ckpt (its metrics.json names it)"
        )
    return file


def _check_same_val_split(where: str, checkpoint: Path, val_files: Sequence[str]) -> None:
    """Refuse a teacher that trained on any of the student's validation images: its
    predictions would carry their labels into the student, and val/acc would be inflated.
    A student without validation (data.val_fraction=0) may learn from any teacher."""
    predictions = teacher_run_dir(checkpoint) / PREDICTIONS_FILE
    fix = (
        "train the teacher with this run's data settings (data.root, data.val_fraction, "
        "data.split_seed, data.dedup) and give the checkpoint inside its run dir"
    )
    if not predictions.is_file():
        raise UserError(
            f"{where}: {predictions} is missing, so the teacher's validation split cannot be "
            f"checked against this run's; {fix}"
        )
    _, splits = read_predictions(predictions)
    teacher_val = set(splits["val"].files) if "val" in splits else set()
    if not set(val_files) <= teacher_val:
        held_out = "other images than this run" if teacher_val else "no images (val_fraction=0)"
        raise UserError(
            f"{where} was validated on {held_out} ({predictions} val rows), so it trained on "
            f"some of this run's validation faces; {fix}"
        )
