"""The one schema of a run's results: what every metrics.json holds.

Training (`python -m mer_lightning`), re-tests (`mer_lightning.evaluate`) and ensembles
(`mer_lightning.ensemble`) write it; the comparison and every other reader read it through
`read_results`. A field renamed here is renamed for all of them. `schema_version` tells the
shape: files written before it existed (version 1) load as they are, their kind inferred
from the fields they hold.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mer_lightning.core.errors import UserError

SCHEMA_VERSION = 2
FILE = "metrics.json"

Kind = Literal["train", "evaluate", "ensemble"]


@dataclass
class RunResults:
    """A run's results. Accuracies are fractions in [0, 1]; `metrics` holds every logged
    number under its stage-namespaced key (`test/acc`, `test/f1/fear`, `train/acc`)."""

    kind: Kind  # train: a fit and test; evaluate: a re-test of a run; ensemble: a soft vote
    model: str | None  # model.name (or "soft vote" for an ensemble)
    seed: int | None  # the training seed; None for an ensemble
    classes: list[str]  # class names, in the order of the net's outputs
    metrics: dict[str, float]  # every logged number by key
    data: dict[str, Any]  # the dataset's sizes and settings (datamodule.data_summary())
    per_class: dict[str, dict[str, float]] | None = None  # test precision/recall/f1/support
    train_acc: float | None = None  # on the training split, eval mode, no augmentation
    val_acc: float | None = None  # of the best (or final) checkpoint
    test_acc: float | None = None
    test_f1_macro: float | None = None
    # train only
    epochs: int | None = None  # epochs fitted
    parameters: int | None = None  # trainable and frozen parameters of the net
    precision: str | None = None  # what trainer.precision resolved to
    fit_seconds: float | None = None  # wall time of fit: the paper's generation time
    train_images_per_second: float | None = None
    train_images_seen: int | None = None
    best_checkpoint: str | None = None  # relative to the run dir
    resumed_from: str | None = None  # the checkpoint a resumed fit started from
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    # evaluate and ensemble only
    run_dir: str | None = None  # the evaluated run (evaluate)
    checkpoint: str | None = None  # its checkpoint, relative to run_dir (evaluate)
    overrides: list[str] = field(default_factory=list)  # what the re-test changed
    trained_test_acc: float | None = None  # the run's own test accuracy (evaluate)
    members: list[dict[str, Any]] = field(default_factory=list)  # per member run (ensemble)
    schema_version: int = SCHEMA_VERSION

    def number(self, name: str) -> float | None:
        """A number by field name (`test_acc`) or logged key (`test/f1/fear`); None if absent."""
        value = getattr(self, name, None) if name.isidentifier() else None
        if value is None:
            value = self.metrics.get(name)
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of metrics.json."""
        return dataclasses.asdict(self)


FIELDS = {f.name for f in dataclasses.fields(RunResults)}


def results_from_dict(payload: dict[str, Any], source: str = "metrics.json") -> RunResults:
    """A RunResults from a metrics.json object of any schema version."""
    version = payload.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{source} has schema_version {version}, newer than this mer_lightning reads "
            f"({SCHEMA_VERSION}); upgrade mer_lightning"
        )
    values = {key: value for key, value in payload.items() if key in FIELDS}
    if version == 1:
        values["kind"] = _version1_kind(payload)
        values["schema_version"] = SCHEMA_VERSION
    if "kind" not in values or "classes" not in values:
        raise UserError(f"{source} is not a mer_lightning metrics.json (no kind or classes)")
    values.setdefault("model", None)
    values.setdefault("seed", None)
    values.setdefault("metrics", {})
    values.setdefault("data", {})
    for key in ("history", "overrides", "members"):
        if values.get(key) is None:
            values[key] = []
    return RunResults(**values)


def _version1_kind(payload: dict[str, Any]) -> Kind:
    if "members" in payload:
        return "ensemble"
    if "run_dir" in payload or "trained_test_acc" in payload:
        return "evaluate"
    return "train"


def read_results(path: Path) -> RunResults:
    """The RunResults of a metrics.json file."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{path} cannot be read as JSON ({error}); remove or restore it") from error
    return results_from_dict(payload, str(path))


def write_results(path: Path, results: RunResults) -> None:
    """metrics.json of `results`."""
    from mer_lightning.runs.reports import write_json

    write_json(path, results.to_dict())
