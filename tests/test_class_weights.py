"""module.class_weights: the named schemes, lists, and bad values."""

import pytest
import torch

from mer_lightning.core.errors import UserError
from mer_lightning.recipes.class_weights import resolve_class_weights

COUNTS = torch.tensor([100, 25])  # a common and a rare class
NAMES = ["happiness", "fear"]


def mean_weight_per_image(weights: list[float]) -> float:
    return float((torch.tensor(weights) * COUNTS).sum() / COUNTS.sum())


@pytest.mark.parametrize("setting", [None, "none"])
def test_unweighted(setting):
    assert resolve_class_weights(setting, COUNTS, NAMES) is None


@pytest.mark.parametrize(("setting", "rare_over_common"), [("sqrt", 2.0), ("balanced", 4.0)])
def test_named_schemes_weigh_rare_classes_up_and_keep_the_loss_scale(setting, rare_over_common):
    weights = resolve_class_weights(setting, COUNTS, NAMES)
    assert weights[1] / weights[0] == pytest.approx(rare_over_common)
    assert mean_weight_per_image(weights) == pytest.approx(1.0)


def test_a_list_is_taken_as_given():
    assert resolve_class_weights([1, 3.5], COUNTS, NAMES) == [1.0, 3.5]


@pytest.mark.parametrize("setting", ["balance", "None", [1, "x"]])
def test_a_bad_setting_names_the_key_and_the_choices(setting):
    with pytest.raises(UserError, match=r"module.class_weights=.* must be null, one of \['none'"):
        resolve_class_weights(setting, COUNTS, NAMES)
