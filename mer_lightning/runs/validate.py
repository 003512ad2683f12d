"""Check a composed train config before anything is built, read or trained.

A typo such as `module.optimizer.lr=-1` should fail in the first second with a message that
names the key, not an hour later deep inside PyTorch. Every problem found is reported at
once, one line each, so that one fix-and-rerun round is enough.
"""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mer_lightning.core.data.images import BAD_FILE_POLICIES
from mer_lightning.core.data.layout import check_root
from mer_lightning.core.errors import UserError
from mer_lightning.recipes import class_weights, refit
from mer_lightning.runs.config import MOVED_KEYS, moved_key_message

_MISSING = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_int_list(value: Any) -> bool:
    return OmegaConf.is_list(value) and all(_is_int(v) and v >= 1 for v in value)


def _is_number_list(value: Any) -> bool:
    return OmegaConf.is_list(value) and all(_is_number(v) for v in value)


# (key, test, what the value must be); a key absent from the config is not checked.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("module.optimizer.lr", lambda v: _is_number(v) and v > 0, "a number > 0, e.g. 1e-3"),
    ("module.optimizer.weight_decay", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    ("module.label_smoothing", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("data.mixup_alpha", lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 = off)"),
    ("data.cutmix_alpha", lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 = off)"),
    ("module.class_weights", class_weights.is_valid_setting, class_weights.EXPECTED),
    (
        "callbacks.distill.teachers",
        lambda v: v is None or (OmegaConf.is_list(v) and all(isinstance(t, str) for t in v)),
        "a list of checkpoint paths, e.g. '[runs/a/checkpoints/epoch039.ckpt]' ([] = off)",
    ),
    ("callbacks.distill.temperature", lambda v: _is_number(v) and v > 0, "a number > 0, e.g. 4"),
    ("callbacks.distill.weight", lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("callbacks.distill.mirror", lambda v: isinstance(v, bool), "true or false"),
    (
        "data.val_fraction",
        lambda v: _is_number(v) and 0 <= v < 1,
        "a number in [0, 1): e.g. 0.1, or 0 to train on all of train/ without validation",
    ),
    ("data.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("data.eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("data.image_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1, e.g. 80"),
    ("data.num_workers", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("data.on_bad_file", lambda v: v in BAD_FILE_POLICIES, f"one of {list(BAD_FILE_POLICIES)}"),
    ("data.dedup", lambda v: isinstance(v, bool), "true or false"),
    (
        "trainer.max_epochs",
        lambda v: v is None or (_is_int(v) and (v >= 1 or v == -1)),
        "an integer >= 1 (or -1 for no limit)",
    ),
    ("monitor.mode", lambda v: v in ("min", "max"), "min or max"),
    (
        "monitor.metric",
        lambda v: not str(v).startswith(("test/", "epoch_test/")),
        "a val/ or train/ metric: the test split never chooses a checkpoint",
    ),
    ("seed", lambda v: v is None or _is_int(v), "an integer or null"),
    ("resume", lambda v: isinstance(v, bool), "true or false"),
    # Sizes of the nets: an empty or non-integer list would end in an IndexError or a
    # TypeError deep inside torch.
    (
        "model.channels",
        lambda v: _is_int_list(v) and len(v) >= 1,
        "a non-empty list of integers >= 1, one conv width per block, e.g. [32,64,128]",
    ),
    (
        "model.hidden",
        _is_int_list,
        "a list of integers >= 1, one width per hidden linear layer, e.g. [1024,512] ([] = none)",
    ),
    ("model.convs_per_block", lambda v: _is_int(v) and v >= 1, "an integer >= 1, e.g. 3"),
    ("model.dropout", lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("model.reduction_dim", lambda v: _is_int(v) and v >= 1, "an integer >= 1, e.g. 512"),
    ("model.in_channels", lambda v: _is_int(v) and v >= 1, "an integer >= 1 (3 for RGB)"),
    (
        "data.std",
        lambda v: _is_number_list(v) and all(s > 0 for s in v),
        "a list of numbers > 0, one per image channel, e.g. [0.5,0.5,0.5]",
    ),
    ("data.mean", _is_number_list, "a list of numbers, one per image channel, e.g. [0.5,0.5,0.5]"),
    (
        "data.augment.blur.sigma",
        lambda v: _is_number_list(v) and len(v) == 2 and 0 < v[0] <= v[1],
        "a [low, high] pair with 0 < low <= high, e.g. [0.1,1.0]",
    ),
    (
        "data.augment.blur.kernel_size",
        lambda v: _is_int(v) and v >= 1 and v % 2 == 1,
        "an odd integer >= 1, e.g. 3",
    ),
    ("data.augment.blur.p", lambda v: _is_number(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    ("data.augment.hflip.p", lambda v: _is_number(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    ("data.augment.crop.padding", lambda v: _is_int(v) and v >= 0, "an integer >= 0, e.g. 8"),
    ("data.augment.rotation.degrees", lambda v: _is_number(v) and v >= 0, "a number >= 0"),
]


def problems(cfg: DictConfig) -> list[str]:
    """Every problem of the config, one line each naming the key; empty when it is fine."""
    found = moved_key_problems(cfg)
    for key, test, expected in RULES:
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is not _MISSING and not test(value):
            found.append(f"{key}={value} must be {expected}")
    root = OmegaConf.select(cfg, "data.root")
    if root is not None:
        try:
            check_root(root, bool(OmegaConf.select(cfg, "data.download", default=False)))
        except UserError as error:
            found.append(str(error))
    found.extend(_checkpoint_problems(cfg))
    found.extend(_last_checkpoint_problems(cfg))
    found.extend(refit.problems(cfg))
    found.extend(_channel_stat_problems(cfg))
    return found


def _channel_stat_problems(cfg: DictConfig) -> list[str]:
    """data.mean and data.std normalise each image channel: one value per channel."""
    channels = OmegaConf.select(cfg, "model.in_channels", default=3)
    found = []
    for key in ("data.mean", "data.std"):
        value = OmegaConf.select(cfg, key, default=None)
        if _is_number_list(value) and len(value) != channels and _is_int(channels):
            found.append(
                f"{key}={value} has {len(value)} values for {channels} image channels "
                f"(model.in_channels); give one per channel, e.g. [{','.join(['0.5'] * channels)}]"
            )
    return found


def moved_key_problems(cfg: DictConfig) -> list[str]:
    """Keys that moved, set with `+` (Hydra refuses them without it): they would do nothing."""
    return [
        moved_key_message(old)
        for old in MOVED_KEYS
        if OmegaConf.select(cfg, old, default=_MISSING) is not _MISSING
    ]


def _last_checkpoint_problems(cfg: DictConfig) -> list[str]:
    """callbacks.last_checkpoint takes one mid-epoch trigger: Lightning refuses both, and none
    would make it a twin of callbacks.epoch_end_checkpoint, which Lightning refuses too."""
    last = OmegaConf.select(cfg, "callbacks.last_checkpoint")
    if not last:
        return []
    steps, interval = last.get("every_n_train_steps"), last.get("train_time_interval")
    if steps and interval is not None:
        return [
            "callbacks.last_checkpoint.every_n_train_steps and .train_time_interval are both "
            "set; Lightning takes one: add callbacks.last_checkpoint.train_time_interval=null"
        ]
    if not steps and interval is None and OmegaConf.select(cfg, "callbacks.epoch_end_checkpoint"):
        return [
            "callbacks.last_checkpoint has neither every_n_train_steps nor train_time_interval, "
            "so it would only repeat callbacks.epoch_end_checkpoint's save at each epoch end "
            "(Lightning refuses the pair): set one of them, or drop mid-epoch saves with "
            "callbacks.last_checkpoint=null"
        ]
    return []


def _checkpoint_problems(cfg: DictConfig) -> list[str]:
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None:
        return []
    if cfg.get("resume"):
        return [
            f"resume=true and ckpt_path={ckpt_path} both pick a checkpoint; set only one "
            "(resume=true continues this run dir's last.ckpt)"
        ]
    if ckpt_path != "last" and not Path(str(ckpt_path)).expanduser().is_file():
        return [
            f"ckpt_path={ckpt_path} is not a file; give a .ckpt of a training run, or "
            "ckpt_path=last with hydra.run.dir=<that run's dir>"
        ]
    return []


def validate(cfg: DictConfig) -> None:
    """Raise one UserError listing every bad value; silent when the config is fine."""
    found = problems(cfg)
    if len(found) == 1:
        raise UserError(found[0])
    if found:
        raise UserError("bad config values:\n  - " + "\n  - ".join(found))
