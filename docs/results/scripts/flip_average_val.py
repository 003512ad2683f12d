"""Does averaging over a horizontal flip help?  Val accuracy of finished runs, both ways.

    python docs/results/scripts/flip_average_val.py /work/runs/paper/0_model=resnet18 ...

Each run's best checkpoint predicts its own validation split (the run's config recomposed)
once as is and once as the mean of the image's and its mirror's class probabilities. Decided
on val, never on test; the result is in docs/results/README.md.
"""

import json
import sys
import tempfile
from pathlib import Path

from mer_lightning.checkpoint import load_checkpoint
from mer_lightning.config import recompose_run_config

from mer_lightning.train import build_datamodule


def flip_average_accuracy(run: Path) -> tuple[int, float, float]:
    """(val images, plain accuracy, flip-averaged accuracy) of `run`'s best checkpoint."""
    metrics = json.loads((run / "metrics.json").read_text())
    datamodule = build_datamodule(recompose_run_config(run, [], Path(tempfile.mkdtemp())))
    model = load_checkpoint(run / metrics["best_checkpoint"])
    plain = averaged = total = 0
    for images, labels in datamodule.val_dataloader():
        probabilities = model.predict_proba(images)
        mirrored = model.predict_proba(images.flip(-1))
        plain += (probabilities.argmax(1) == labels).sum().item()
        averaged += ((probabilities + mirrored).argmax(1) == labels).sum().item()
        total += len(labels)
    return total, plain / total, averaged / total


if __name__ == "__main__":
    for run in map(Path, sys.argv[1:]):
        n, plain, averaged = flip_average_accuracy(run)
        print(f"{run}: {n} val images, plain {plain:.2%}, flip-averaged {averaged:.2%}")
