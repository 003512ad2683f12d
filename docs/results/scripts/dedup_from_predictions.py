"""Test accuracy on the deduplicated test set, from a published run's predictions.csv.

    python docs/results/scripts/dedup_from_predictions.py DATA_ROOT RUN_DIR ...

For runs whose checkpoints are gone (lost with a machine) but whose predictions.csv was
published: the accuracy `python -m mer_lightning.evaluate SWEEP_DIR data.dedup=true` would give,
the same predictions without the test copies of train images that data.dedup=true drops.
Each prediction depends on its image alone (eval mode), so dropping rows equals re-testing.
"""

import sys
from pathlib import Path

from mer_lightning.audit.report import dedup_drops, scan
from mer_lightning.data.layout import find_split_root
from mer_lightning.errors import UserError
from mer_lightning.predictions import FILE, SplitPredictions, read_predictions


def main(data_root: str, runs: list[str]) -> None:
    """Print each run's test accuracy with and without the dropped copies."""
    root = find_split_root(Path(data_root))
    if root is None:
        sys.exit(f"{data_root} has no train/ and test/; expected Micro_Expressions/{{train,test}}")
    dropped = {path.relative_to(root).as_posix() for path in dedup_drops(scan(root))[0]}
    for run in runs:
        try:
            _, splits = read_predictions(Path(run) / FILE)
        except UserError as error:
            sys.exit(f"{error}; give run folders that hold the predictions.csv training wrote")
        test = splits["test"]
        kept = [i for i, file in enumerate(test.files) if file not in dropped]
        dedup = SplitPredictions(
            [test.files[i] for i in kept], test.labels[kept], test.probabilities[kept]
        )
        print(
            f"{run}: test {100 * test.accuracy():.2f} % of {len(test.files)}, "
            f"dedup {100 * dedup.accuracy():.2f} % of {len(kept)}"
        )


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: dedup_from_predictions.py DATA_ROOT RUN_DIR [RUN_DIR ...]")
    main(sys.argv[1], sys.argv[2:])
