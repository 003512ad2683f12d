"""Knowledge distillation: a net learns the labels and the softened predictions of teachers.

An ensemble of runs scores higher than any one of its members (docs/results) but costs a
forward pass per member. Distillation (Hinton et al., 2015) trains one net to match, besides
the labels, the teachers' class probabilities softened by a temperature, which also say how
alike the classes look to them; it is the standard way to carry an ensemble's accuracy into a
single deployable net. Teachers are finished runs of this project on the same training split.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from mer_lightning.core.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.core.data.normalize import channel_stats
from mer_lightning.core.errors import UserError
from mer_lightning.core.models.tta import averaged_logits
from mer_lightning.core.predictions import FILE as PREDICTIONS_FILE
from mer_lightning.core.predictions import read_predictions

KEY = "module.distill.teachers"


@dataclass(frozen=True)
class Distillation:
    """Frozen teachers and how much the student learns from them.

    Not an nn.Module on purpose: held by the LightningModule, the teachers stay out of its
    state_dict, its optimizer and its train/eval switching.
    """

    teachers: tuple[LoadedModel, ...]
    temperature: float
    weight: float
    mirror: bool = False  # teach each face's and its mirror's mean logits (module.distill.mirror)

    def to(self, device: torch.device) -> "Distillation":
        """Move the teachers' weights to `device` (in place); returns self."""
        for teacher in self.teachers:
            teacher.net.to(device)
        return self

    @torch.no_grad()
    def soft_targets(
        self, inputs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """The teachers' mean class probabilities at the temperature for the student's
        normalised `inputs` (made with `mean`, `std`), each teacher fed the same pixels in
        its own normalisation, so that augmented or MixUp-blended batches reach it as is.
        With `mirror`, each teacher's logits are those of the face and its mirror averaged,
        as a run with module.tta_hflip predicts: a steadier teacher for one more forward."""
        pixels = inputs.float() * std + mean
        probabilities = []
        for teacher in self.teachers:
            own_mean = channel_stats(teacher.mean).to(pixels)
            own_std = channel_stats(teacher.std).to(pixels)
            own_inputs = (pixels - own_mean) / own_std
            logits = averaged_logits(teacher.net, own_inputs, hflip=self.mirror).float()
            probabilities.append((logits / self.temperature).softmax(dim=1))
        return torch.stack(probabilities).mean(dim=0)

    def loss(self, student_logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
        """KL(teachers || student) at the temperature, times its square so that the term's
        gradients keep the scale of the cross-entropy's whatever the temperature."""
        log_student = F.log_softmax(student_logits.float() / self.temperature, dim=1)
        kl = F.kl_div(log_student, soft_targets, reduction="batchmean")
        return kl * self.temperature**2


def load_distillation(
    settings: Mapping[str, Any] | None,
    class_names: Sequence[str],
    image_size: int,
    val_files: Sequence[str],
) -> Distillation | None:
    """The teachers of `module.distill` (`settings`), checked against the student's classes,
    input size and validation split; None when it names no teacher (distillation off)."""
    teachers = list((settings or {}).get("teachers") or [])
    if not teachers:
        return None
    loaded = []
    for index, path in enumerate(teachers):
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
    return Distillation(
        tuple(loaded),
        float(settings["temperature"]),
        float(settings["weight"]),
        mirror=bool(settings.get("mirror", False)),
    )


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
