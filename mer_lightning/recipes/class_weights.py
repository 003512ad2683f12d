"""Per-class loss weights (module.class_weights): by name, from the training class counts.

The names are strings, so that a Hydra sweep can choose among them: `choice(none, sqrt,
balanced)` (Hydra's choice() takes no null). A class's weight is proportional to its count to
the power -p (none: p = 0, sqrt: 1/2, balanced: 1), scaled so that the weights average 1
over the training images: the loss keeps its size and the learning rate its meaning.
"""

from collections.abc import Sequence
from typing import Any

import torch

from mer_lightning.core.errors import UserError

SCHEMES = {"none": 0.0, "sqrt": 0.5, "balanced": 1.0}  # name -> power of 1 / class count
EXPECTED = f"null, one of {list(SCHEMES)} or a list of one weight per class"


def is_valid_setting(setting: Any) -> bool:
    """Whether module.class_weights names a scheme, is null, or is a list of numbers."""
    if setting is None or (isinstance(setting, str) and setting in SCHEMES):
        return True
    return (
        isinstance(setting, Sequence)
        and not isinstance(setting, str)
        and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in setting)
    )


def resolve_class_weights(
    setting: Any, counts: torch.Tensor, class_names: Sequence[str]
) -> list[float] | None:
    """The loss weights for module.class_weights given the training images per class;
    None for unweighted cross-entropy."""
    if not is_valid_setting(setting):
        raise UserError(f"module.class_weights={setting} must be {EXPECTED}")
    if setting is None or setting == "none":
        return None
    if isinstance(setting, str):
        counts = counts.double().clamp(min=1)
        raw = counts.pow(-SCHEMES[setting])
        return (raw * counts.sum() / (raw * counts).sum()).tolist()
    weights = [float(w) for w in setting]
    if len(weights) != len(class_names):
        raise UserError(
            f"module.class_weights has {len(weights)} values but the data has "
            f"{len(class_names)} classes {list(class_names)}; give one per class "
            "or use module.class_weights=balanced"
        )
    return weights
