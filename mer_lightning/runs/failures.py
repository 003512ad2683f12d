"""How a failed sweep job is written down, so that the comparison report can list it.

Two kinds of failure, two files, both read by `mer_lightning.compare`:
- a job whose task raised: `failure.json` in its own job dir (written by `__main__`);
- a job whose config did not compose (e.g. `model=bogus`): it never gets a job dir, so the
  sweeper appends it to `failed_to_compose.json` in the multirun dir.
"""

import json
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAILURE_FILE = "failure.json"
COMPOSE_FAILURES_FILE = "failed_to_compose.json"


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, the one line a report has room for.

    A first line that only introduces the next (ends with ':', as Hydra's "Error in call to
    target 'X':" does) is joined with it, so that the line still says what went wrong.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return f"{type(error).__name__}: {text}"


def write_failure(job_dir: Path, error: BaseException) -> dict[str, Any]:
    """Write failure.json (first line, type, traceback) into a job dir; returns its content."""
    record = {
        "error": first_line(error),
        "type": type(error).__name__,
        "traceback": "".join(traceback.format_exception(error)),
    }
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / FAILURE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def append_compose_failure(sweep_dir: Path, overrides: Sequence[str], error: Exception) -> None:
    """Add one job that did not compose to failed_to_compose.json in the multirun dir."""
    path = sweep_dir / COMPOSE_FAILURES_FILE
    records = read_compose_failures(sweep_dir)
    records.append({"overrides": list(overrides), "error": first_line(error)})
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n")


def read_compose_failures(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records of failed_to_compose.json, or an empty list when every job composed."""
    path = sweep_dir / COMPOSE_FAILURES_FILE
    return json.loads(path.read_text()) if path.is_file() else []
