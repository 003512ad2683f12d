"""Copy a sweep's results into a folder meant for version control (docs/results/<name>/).

Only the small files a reader needs: the comparison report, and each completed job's
classification report, confusion matrix and metrics; no checkpoints or event files.
"""

import shutil
from pathlib import Path

from mer_lightning.compare import REPORT_FILES, Comparison
from mer_lightning.errors import UserError

JOB_FILES = ("classification_report.txt", "confusion_matrix.png", "metrics.json")


def publish(result: Comparison, out: Path) -> list[Path]:
    """Copy the report of `result` and its completed jobs' files into `out`; the copies.

    A job's files go to `out/<job dir name>/`. Refuses to write into a non-empty `out`, so
    that results published earlier are never overwritten.
    """
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: publish into a new folder, or remove it first")
    out.mkdir(parents=True, exist_ok=True)
    copies = [Path(shutil.copy2(result.sweep_dir / name, out / name)) for name in REPORT_FILES]
    for job in result.jobs:
        if not job.completed:
            continue
        target = out / job.dir.name
        target.mkdir()
        for name in JOB_FILES:
            if (job.dir / name).is_file():
                copies.append(Path(shutil.copy2(job.dir / name, target / name)))
    return copies
