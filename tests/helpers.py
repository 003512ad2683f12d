"""Shared test helpers: a synthetic Kaggle-layout dataset and in-process Hydra runs."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from mer_lightning.core.models import build_net, net_config
from mer_lightning.core.module import EmotionClassifier
from mer_lightning.runs.config import compose_run_config as compose_config  # noqa: F401

REPO = Path(__file__).resolve().parents[1]

CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")

# Small models and images so that a whole fit + test takes seconds on two CPU cores.
FAST_MODEL = {
    "cnn1": ["model.channels=[8,16,16]", "model.hidden=[32,32]"],
    "cnn2": ["model.channels=[8,16,16,16]", "model.hidden=[32,32]"],
    "resnet18": ["model.reduction_dim=32"],
}
FAST_RUN = [
    "data.image_size=32",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "print_config=false",
    "callbacks.progress_bar=null",
]


def class_image(label: int, generator: torch.Generator, size: int = 80) -> torch.Tensor:
    """An RGB uint8 image whose colour and stripe direction depend on the class."""
    hue = torch.tensor([(label * 37) % 256, (label * 91 + 60) % 256, (label * 53 + 120) % 256])
    image = hue.view(3, 1, 1).float().expand(3, size, size).clone()
    coords = torch.arange(size, dtype=torch.float)
    angle = torch.tensor(label * torch.pi / len(CLASSES))
    stripes = torch.sin(
        (coords.view(1, -1) * torch.cos(angle) + coords.view(-1, 1) * torch.sin(angle)) / 3
    )
    image += 60 * stripes
    image += 20 * torch.randn(3, size, size, generator=generator)
    return image.clamp(0, 255).to(torch.uint8)


def write_dataset(root: Path, train_per_class: int = 14, test_per_class: int = 6) -> Path:
    """Write a learnable dataset in the Kaggle layout; returns .../Micro_Expressions."""
    generator = torch.Generator().manual_seed(0)
    base = root / "Micro_Expressions"
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(CLASSES):
            folder = base / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(1, count + 1):
                pixels = class_image(label, generator).permute(1, 2, 0).numpy()
                Image.fromarray(pixels).save(folder / f"{name}{n}.jpg", quality=95)
    return base


def fast_overrides(model: str, data_root: Path, *extra: str) -> list[str]:
    """Overrides for a quick run of `model` on the dataset at `data_root`."""
    return [f"model={model}", f"data.root={data_root}", *FAST_RUN, *FAST_MODEL[model], *extra]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m mer_lightning args...` from `cwd` on one thread, with this checkout
    importable; its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "mer_lightning", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_with_cli(*args: str, cwd: Path) -> None:
    """`run_cli`, failing the test with the end of stderr unless it exits with status 0."""
    result = run_cli(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]


def train_run(run_dir: Path, model: str, data_root: Path, *extra: str) -> Path:
    """A quick finished run of `model` in `run_dir`, trained by the CLI as a user would."""
    train_with_cli(
        *fast_overrides(model, data_root),
        f"hydra.run.dir={run_dir}",
        "callbacks.model_summary=null",
        *extra,
        cwd=run_dir.parent,
    )
    return run_dir


TINY_SIZE = 16
TINY_ARCH = net_config(
    {
        "_target_": "mer_lightning.core.models.cnn.BlockCNN",
        "channels": [4],
        "convs_per_block": 1,
        "hidden": [8],
        "input_size": TINY_SIZE,
    },
    num_classes=3,
)


def tiny_classifier(**options) -> EmotionClassifier:
    """A seeded 3-class EmotionClassifier on 16x16 faces, small enough to check one step of
    it by hand; `options` are EmotionClassifier's keyword arguments."""
    torch.manual_seed(0)
    return EmotionClassifier(
        net=build_net(TINY_ARCH),
        class_names=["anger", "fear", "surprise"],
        optimizer=torch.optim.SGD,
        image_size=TINY_SIZE,
        arch=TINY_ARCH,
        **options,
    )


def tiny_faces(count: int = 4) -> torch.Tensor:
    """`count` random uint8 faces for `tiny_classifier`, the same on every call."""
    generator = torch.Generator().manual_seed(1)
    shape = (count, 3, TINY_SIZE, TINY_SIZE)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
