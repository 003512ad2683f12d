"""Load a training checkpoint into a ready-to-use net, without executing pickled code.

A Lightning checkpoint of `EmotionClassifier` carries everything prediction and export
need in `hyper_parameters`: the net's constructor config (`arch`), the class names and the
preprocessing (image size, mean, std). So the checkpoint file alone rebuilds the model.
"""

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mer_lightning.core.data.normalize import channel_stats, normalize_images
from mer_lightning.core.errors import UserError
from mer_lightning.core.models import build_net
from mer_lightning.core.models.tta import averaged_logits

# Only nets of this package may be built from a checkpoint's `arch`: Hydra would otherwise
# call whatever `_target_` a crafted checkpoint names, which is code execution by another road.
ARCH_PACKAGE = "mer_lightning.core.models."
# Where the nets lived before the package was split into layers; checkpoints of that time
# name them so and still load.
LEGACY_ARCH_PACKAGE = "mer_lightning.models."
REQUIRED_HPARAMS = ("class_names", "image_size", "mean", "std", "arch")
NET_PREFIX = "net."


@dataclass(frozen=True)
class LoadedModel:
    """A net in eval mode plus the preprocessing its checkpoint was trained with."""

    net: nn.Module
    class_names: list[str]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    arch: dict[str, Any]
    path: Path | None = None  # the checkpoint it came from; None for a net built in memory
    tta_hflip: bool = False  # mirror-average the logits, as the run's val/test did
    tta_shift: int = 0  # average the faces moved by this many pixels too, as val/test did

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (N, 3, S, S) -> the float input the net was trained on."""
        return normalize_images(images, channel_stats(self.mean), channel_stats(self.std))

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, classes) for uint8 RGB images (N, 3, S, S), scored as the
        run's validation and test scored them (averaged over the mirror with `tta_hflip`
        and the moved faces with `tta_shift`)."""
        logits = averaged_logits(self.net, self.normalize(images), self.tta_hflip, self.tta_shift)
        return logits.softmax(dim=1)


def current_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's `arch` with the net's `_target_` at its present import path, so that
    checkpoints written before the nets moved into `mer_lightning.core` still load."""
    arch = dict(arch)
    target = str(arch.get("_target_", ""))
    if target.startswith(LEGACY_ARCH_PACKAGE):
        arch["_target_"] = ARCH_PACKAGE + target.removeprefix(LEGACY_ARCH_PACKAGE)
    return arch


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Read a mer_lightning .ckpt with `weights_only=True` and rebuild its net on the CPU."""
    path = Path(path).expanduser()
    checkpoint = _read(path)
    hparams = checkpoint.get("hyper_parameters")
    state = checkpoint.get("state_dict")
    if not isinstance(hparams, dict) or not isinstance(state, dict):
        raise UserError(_not_ours(path, "it has no hyper_parameters or state_dict"))
    missing = [key for key in REQUIRED_HPARAMS if key not in hparams]
    if missing:
        raise UserError(_not_ours(path, f"its hyper_parameters lack {missing}"))
    arch = current_arch(hparams["arch"])
    if not str(arch.get("_target_", "")).startswith(ARCH_PACKAGE):
        raise UserError(
            _not_ours(
                path, f"its arch._target_={arch.get('_target_')!r} is not a net of {ARCH_PACKAGE}"
            )
        )
    class_names = list(hparams["class_names"])
    if arch.get("num_classes") != len(class_names):
        raise UserError(
            _not_ours(
                path,
                f"its net {describe_arch(arch)} has {arch.get('num_classes')} outputs but it "
                f"names {len(class_names)} classes {class_names}",
            )
        )
    net = build_net(arch)
    try:
        net.load_state_dict(
            {
                key.removeprefix(NET_PREFIX): value
                for key, value in state.items()
                if key.startswith(NET_PREFIX)
            }
        )
    except RuntimeError as error:  # missing keys or size mismatches: weights of another net
        raise UserError(
            f"checkpoint {path}: its weights are not those of the net it names, "
            f"{describe_arch(arch)} ({str(error).splitlines()[0]} ...); the file was edited or "
            "assembled from two runs: use the .ckpt exactly as training wrote it"
        ) from error
    return LoadedModel(
        net=net.eval(),
        class_names=list(hparams["class_names"]),
        image_size=int(hparams["image_size"]),
        mean=tuple(float(v) for v in hparams["mean"]),
        std=tuple(float(v) for v in hparams["std"]),
        arch=arch,
        path=path,
        tta_hflip=bool(hparams.get("tta_hflip", False)),  # absent from older checkpoints
        tta_shift=int(hparams.get("tta_shift", 0)),
    )


def describe_arch(arch: dict[str, Any]) -> str:
    """`BlockCNN(channels=[32, 64, 128], ...)`: an architecture config as one readable line."""
    name = str(arch.get("_target_", "?")).rsplit(".", 1)[-1]
    args = ", ".join(f"{key}={value}" for key, value in arch.items() if key != "_target_")
    return f"{name}({args})"


def check_matches(path: str | Path, arch: dict[str, Any], class_names: list[str]) -> None:
    """Raise a UserError naming both sides when the checkpoint at `path` was trained with
    another architecture or class set than `arch` / `class_names` (loaded weights_only)."""
    path = Path(path).expanduser()
    hparams = _read(path).get("hyper_parameters")
    if not isinstance(hparams, dict) or "arch" not in hparams or "class_names" not in hparams:
        raise UserError(_not_ours(path, "its hyper_parameters lack arch or class_names"))
    theirs, their_classes = current_arch(hparams["arch"]), list(hparams["class_names"])
    if theirs != dict(arch):
        raise UserError(
            f"checkpoint {path} holds another architecture: it was trained as "
            f"{describe_arch(theirs)}, this run builds {describe_arch(arch)}. Use the same "
            "model= and model.* overrides as the run that wrote it, or start without it"
        )
    if their_classes != list(class_names):
        raise UserError(
            f"checkpoint {path} was trained on other classes: {their_classes}; this run's data "
            f"has {list(class_names)}. Point data.root at the dataset it was trained on, or "
            "start without it"
        )


def training_steps(path: str | Path) -> int:
    """The optimizer steps taken when the checkpoint at `path` was saved (Lightning's
    `global_step`): where a run continued from it goes on logging."""
    return int(_read(Path(path).expanduser()).get("global_step", 0))


def _read(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True, turning every failure into a UserError."""
    if not path.is_file():
        raise UserError(
            f"checkpoint {path} does not exist; pass ckpt=PATH to a .ckpt file of a training "
            "run (outputs/runs/<date>/<time>/checkpoints/, named in its metrics.json)"
        )
    if not zipfile.is_zipfile(path):  # torch.save (and so Lightning) writes zip archives
        raise UserError(
            f"checkpoint {path} is not a readable PyTorch file (not the zip archive torch.save "
            "writes); it may be truncated or another kind of file: pass ckpt=PATH to a .ckpt "
            "file of a training run"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UserError(
            f"checkpoint {path} holds pickled Python objects that weights_only loading refuses "
            f"to execute ({_unpickler_reason(error)}); use a checkpoint written by "
            "`python -m mer_lightning` training, which loads safely"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise UserError(
            f"checkpoint {path} is not a readable PyTorch file ({error}); it may be truncated: "
            "pass ckpt=PATH to a .ckpt file of a training run"
        ) from error
    if not isinstance(checkpoint, dict):
        raise UserError(_not_ours(path, f"it holds a {type(checkpoint).__name__}, not a dict"))
    return checkpoint


def _unpickler_reason(error: pickle.UnpicklingError) -> str:
    """The one line of torch's long weights_only message that names what was refused."""
    lines = [line.strip() for line in str(error).splitlines()]
    reason = next((line for line in lines if line.startswith("WeightsUnpickler error")), "")
    return reason.split(". Please use")[0] or lines[0]


def _not_ours(path: Path, reason: str) -> str:
    return (
        f"{path} is not a mer_lightning checkpoint ({reason}); pass ckpt=PATH to a .ckpt "
        "file written by `python -m mer_lightning` training"
    )
