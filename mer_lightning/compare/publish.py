"""Copy a sweep's results into a folder meant for version control (docs/results/<name>/).

Only the small files a reader needs: the comparison report, the evaluation tables of
`python -m mer_lightning.evaluate`, each completed job's classification report,
confusion matrix, metrics and per-image predictions (from which
`python -m mer_lightning.ensemble` rebuilds ensembles), also those of its evaluations, and
the same files of the sweep's ensembles; no checkpoints or event files.

The copies hold no absolute path of the machine that trained: in every text file a path
inside the sweep dir becomes relative to it (`run_dir`: `0_model=cnn1`), the dataset's
`data.root` becomes its folder's name and a file inside it relative to it, and any other
absolute path (a teacher's checkpoint in another sweep) relative to the sweep dir.
"""

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from mer_lightning.compare import REPORT_FILES, Comparison
from mer_lightning.core.errors import UserError

JOB_FILES = ("classification_report.txt", "confusion_matrix.png", "metrics.json", "predictions.csv")
ENSEMBLE_FILES = (*JOB_FILES, "ensemble.md")
TEXT_SUFFIXES = {".json", ".csv", ".md", ".txt"}

# An absolute path of two or more parts, standing after a quote, bracket, space, "=" or ","
# (not inside a relative path or a URL); a comma belongs to it only before `key=`, as in a
# job dir named `0_model=cnn1,seed=2`.
_PART = r"(?:[\w.@%+=-]|,(?=[\w.-]+=))+"
ABSOLUTE_PATH = re.compile(rf"(?<![\w.~/:-])/{_PART}(?:/{_PART})+")


class PathRewriter:
    """Rewrites the absolute paths in one sweep's files as paths relative to the sweep dir
    or to the dataset root (`data_roots`: the roots its runs name; relative ones stay)."""

    def __init__(
        self, sweep_dir: Path, data_roots: Iterable[str] = (), job_dirs: Iterable[Path] = ()
    ):
        self.sweep_dir = Path(os.path.abspath(sweep_dir))
        anchors: dict[str, tuple[str, str]] = {}  # absolute path -> (itself, prefix inside)
        for root in data_roots:
            if os.path.isabs(root):
                anchors[os.path.normpath(root)] = (Path(root).name, "")
        for job in job_dirs:  # a job dir linked in from elsewhere: its real path
            anchors[os.path.realpath(job)] = (Path(job).name, f"{Path(job).name}/")
        for sweep in (str(self.sweep_dir), os.path.realpath(self.sweep_dir)):
            anchors[sweep] = (".", "")
        self.anchors = sorted(anchors.items(), key=lambda item: -len(item[0]))

    def path(self, path: str) -> str:
        """`path` relative to the sweep dir or a dataset root; `path` itself if relative."""
        if not os.path.isabs(path):
            return path
        for anchor, (itself, inside) in self.anchors:
            if path == anchor:
                return itself
            if path.startswith(anchor.rstrip("/") + "/"):
                return inside + path[len(anchor.rstrip("/")) + 1 :]
        return os.path.relpath(path, self.sweep_dir)

    def text(self, text: str) -> str:
        """`text` with every absolute path rewritten."""
        return ABSOLUTE_PATH.sub(lambda match: self.path(match.group(0)), text)

    def file(self, path: Path) -> None:
        """Rewrite a copied text file in place; other files are left as they are."""
        if path.suffix not in TEXT_SUFFIXES:
            return
        text = path.read_text(encoding="utf-8")
        rewritten = self.text(text)
        if rewritten != text:
            path.write_text(rewritten, encoding="utf-8")


def data_roots(result: Comparison) -> set[str]:
    """The dataset roots the sweep's runs name: in their metrics.json and their overrides."""
    roots = set()
    for job in result.jobs:
        if "data.root" in job.overrides:
            roots.add(job.overrides["data.root"])
        runs = [job.metrics, *job.evaluations.values()] if job.metrics else []
        roots.update(str(run.data["root"]) for run in runs if run.data.get("root"))
    return roots


def publish(result: Comparison, out: Path) -> list[Path]:
    """Copy the report of `result` and its completed jobs' files into `out`; the copies.

    A job's files go to `out/<job dir name>/`, with the absolute paths in them made
    relative (`PathRewriter`). Refuses to write into a non-empty `out`, so that results
    published earlier are never overwritten.
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
    rewriter = PathRewriter(
        result.sweep_dir, data_roots(result), [job.dir for job in result.jobs if job.dir]
    )
    copies = []
    for source in sources:
        target = out / source.relative_to(result.sweep_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = Path(shutil.copy2(source, target))
        rewriter.file(copy)
        copies.append(copy)
    return copies
