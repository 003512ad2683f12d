"""`python -m mer_lightning experiment=best model=M` is each model's headline recipe: the
config it composes is the one the published headline runs trained with (their overrides in
docs/results/*/comparison.csv), but for where the teacher's checkpoint lives."""

import csv
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mer_lightning.runs.config import current_override
from tests.helpers import compose_config

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
HEADLINES = {  # model -> a published folder of its headline row
    "cnn1": "distill_cnn1_seed3",
    "cnn2": "refit_cnn2_sam",
    "resnet18": "best_resnet18_mixup",
}
GROUPS = ("experiment", "model")
# Run plumbing and paths; the teacher's checkpoint path is compared by what trained it.
PLUMBING = ("data.root", "resume", "callbacks.progress_bar", "callbacks.distill.teachers")
TEACHER = {"experiment": "best", "model": "resnet18", "seed": 1}


def published_overrides(folder: str) -> tuple[list[str], dict[str, str]]:
    """The overrides of the folder's first completed job, in today's keys, without plumbing;
    and all of them as key -> value."""
    with (RESULTS / folder / "comparison.csv").open() as handle:
        row = next(r for r in csv.DictReader(handle) if r["status"] == "completed")
    given = {
        key.removeprefix("override."): value
        for key, value in row.items()
        if key.startswith("override.") and value != ""
    }
    overrides = []
    for key, value in given.items():
        override = current_override(f"{key}={value}")
        key = override.split("=", 1)[0]
        if key not in PLUMBING:
            overrides.append(override if key in GROUPS else f"++{override}")
    return overrides, given


def recipe(cfg) -> dict:
    """What trains the model: the config without run plumbing, teachers and re-tests."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in ("hydra", "retests"):
        container.pop(key, None)
    container["callbacks"].pop("distill")
    container["data"].pop("root")
    return container


@pytest.mark.parametrize("model", list(HEADLINES))
def test_one_command_composes_the_published_headline_recipe(model, tmp_path):
    published, given = published_overrides(HEADLINES[model])
    seed = OmegaConf.select(compose_config(published, tmp_path / "p"), "seed")
    theirs = compose_config(published, tmp_path / "p")
    ours = compose_config(["experiment=best", f"model={model}", f"seed={seed}"], tmp_path / "o")

    mine, published_recipe = recipe(ours), recipe(theirs)
    if model == "cnn2":
        # Trained scoring one view, then re-tested mirrored: a refit has no val to choose
        # on, so only the test's mirror differs, and the headline is the mirrored test.
        assert published_recipe["module"].pop("tta_hflip") is False
        assert mine["module"].pop("tta_hflip") is True
    assert mine == published_recipe
    teachers = given.get("module.distill.teachers")
    if teachers:  # distilled from the best recipe's ResNet-18 seed 1, now named by config
        assert "model=resnet18,seed=1" in teachers
        assert OmegaConf.to_container(ours.callbacks.distill.teacher) == TEACHER
    else:
        assert ours.callbacks.distill.teacher is None
