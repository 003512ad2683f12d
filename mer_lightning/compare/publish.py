"""Copy a sweep's results into a folder meant for version control (docs/results/<name>/).

Only the small files a reader needs: the comparison report, the evaluation tables of
`python -m mer_lightning.evaluate`, each completed job's classification report,
confusion matrix, metrics and per-image predictions (from which
`python -m mer_lightning.ensemble` rebuilds ensembles), also those of its evaluations, and
the same files of the sweep's ensembles; no checkpoints or event files.
"""

import shutil
from pathlib import Path

from mer_lightning.compare import REPORT_FILES, Comparison
from mer_lightning.core.errors import UserError

JOB_FILES = ("classification_report.txt", "confusion_matrix.png", "metrics.json", "predictions.csv")
ENSEMBLE_FILES = (*JOB_FILES, "ensemble.md")


def publish(result: Comparison, out: Path) -> list[Path]:
    """Copy the report of `result` and its completed jobs' files into `out`; the copies.

    A job's files go to `out/<job dir name>/`. Refuses to write into a non-empty `out`, so
    that results published earlier are never overwritten.
    """
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: publish into a new folder, or remove it first")
    out.mkdir(parents=True, exist_ok=True)
    sources = [result.sweep_dir / name for name in REPORT_FILES]
    sources += sorted(result.sweep_dir.glob("evaluation_*.csv"))
    for job in result.jobs:
        if job.completed:
            evaluations = [p for p in sorted((job.dir / "evaluate").glob("*")) if p.is_dir()]
            for folder in (job.dir, *evaluations):
                sources += [folder / name for name in JOB_FILES if (folder / name).is_file()]
    for folder in sorted((result.sweep_dir / "ensemble").glob("*")):
        sources += [folder / name for name in ENSEMBLE_FILES if (folder / name).is_file()]
    copies = []
    for source in sources:
        target = out / source.relative_to(result.sweep_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        copies.append(Path(shutil.copy2(source, target)))
    return copies
