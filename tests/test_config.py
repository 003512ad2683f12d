"""Every option of every config group composes and resolves; the CLI's --help and --cfg work."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from mer_lightning.runs.config import CONFIG_DIR
from tests.helpers import compose_config

# experiment_model is not chosen on the command line: train.yaml picks it from the experiment
# and the model (test_an_experiment_can_change_one_model_only)
NOT_CHOSEN = {"hydra", "experiment_model"}
# nested groups (module/scheduler) by their path
GROUPS = sorted(
    p.relative_to(CONFIG_DIR).as_posix()
    for p in CONFIG_DIR.rglob("*")
    if p.is_dir() and p.relative_to(CONFIG_DIR).parts[0] not in NOT_CHOSEN
)
OPTIONS = [
    (group, option.stem)
    for group in GROUPS
    for option in sorted((CONFIG_DIR / group).glob("*.yaml"))
]
ONE_CYCLE = "torch.optim.lr_scheduler.OneCycleLR"
COSINE = "torch.optim.lr_scheduler.CosineAnnealingLR"


def test_every_group_has_options():
    assert {"data", "model", "trainer", "logger", "callbacks", "experiment", "module"} <= set(
        GROUPS
    )
    assert {("model", "cnn1"), ("model", "cnn2"), ("model", "resnet18")} <= set(OPTIONS)
    assert {("trainer", "default"), ("trainer", "cpu"), ("trainer", "gpu")} <= set(OPTIONS)
    assert {("logger", "tensorboard"), ("logger", "csv"), ("experiment", "paper")} <= set(OPTIONS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_config([f"{group}={option}"], tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["monitor"]["metric"] == "val/acc"
    assert container["trainer"]["default_root_dir"] == str(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "mixup_alpha"),
    [
        (["experiment=best", "model=resnet18"], 0.2),  # experiment_model/best_resnet18.yaml
        (["experiment=best", "model=cnn1"], 0.0),
        (["experiment=best", "model=cnn2"], 0.0),
        (["experiment=paper", "model=resnet18"], 0.0),  # no paper_resnet18.yaml
        (["model=resnet18"], 0.0),  # no experiment
        (["experiment=best", "model=resnet18", "data.mixup_alpha=0.0"], 0.0),  # CLI wins
    ],
)
def test_an_experiment_can_change_one_model_only(overrides, mixup_alpha, tmp_path):
    """experiment=best adds MixUp on resnet18 alone, above best's own values, below the CLI."""
    cfg = compose_config(overrides, tmp_path)
    assert cfg.data.mixup_alpha == mixup_alpha
    if "experiment=best" in overrides:
        assert cfg.module.optimizer.lr == pytest.approx(6.69e-4)  # best.yaml still applies


@pytest.mark.parametrize(
    ("overrides", "target", "interval"),
    [
        ([], ONE_CYCLE, "step"),  # the default
        (["module/scheduler=none"], None, "epoch"),
        (["experiment=best"], COSINE, "epoch"),
        (["experiment=paper"], None, "epoch"),  # the paper's constant learning rate
        (["module/scheduler=one_cycle"], ONE_CYCLE, "step"),
        (["experiment=best", "module/scheduler=one_cycle"], ONE_CYCLE, "step"),  # CLI wins
        (["module/scheduler=one_cycle", "experiment=paper"], ONE_CYCLE, "step"),
    ],
)
def test_the_schedule_is_one_choice_of_the_module_scheduler_group(
    overrides, target, interval, tmp_path
):
    """A schedule replaces the one before it whole: no key of the other is left behind."""
    module = compose_config(overrides, tmp_path).module
    assert module.scheduler_interval == interval
    if target is None:
        assert module.scheduler is None
    else:
        expected = {ONE_CYCLE: {"max_lr", "pct_start"}, COSINE: {"T_max"}}[target]
        assert module.scheduler._target_ == target
        assert set(module.scheduler) == {"_target_", "_partial_", *expected}


def test_the_one_cycle_peak_is_the_optimizers_learning_rate(tmp_path):
    """An lr override (or sweep) moves the one-cycle peak rather than being ignored."""
    peak = OmegaConf.to_container(compose_config([], tmp_path).module, resolve=True)
    assert peak["scheduler"]["max_lr"] == peak["optimizer"]["lr"] == 3e-3
    cfg = compose_config(["module/scheduler=one_cycle", "module.optimizer.lr=1e-2"], tmp_path)
    assert OmegaConf.to_container(cfg.module, resolve=True)["scheduler"]["max_lr"] == 1e-2


def test_every_config_value_has_a_comment():
    """Leaf keys carry a comment; section headers (`data:`) only group them."""
    uncommented = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-", "_target_", "_partial_")):
                continue
            if ":" in stripped and "#" not in line and not stripped.endswith(":"):
                uncommented.append(f"{path.relative_to(CONFIG_DIR)}:{number}: {stripped}")
    assert not uncommented, "config keys without a comment:\n" + "\n".join(uncommented)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mer_lightning", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_help_lists_groups_and_cfg_job_prints_config():
    help_text = run_cli("--help").stdout
    assert "model: cnn1, cnn2, resnet18" in help_text
    job = run_cli("--cfg", "job", "model=cnn2")
    assert job.returncode == 0, job.stderr
    cfg = OmegaConf.create(job.stdout)
    assert cfg.model.name == "cnn2" and cfg.model.channels == [32, 64, 128, 256]
