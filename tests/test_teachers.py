"""callbacks.distill.teacher: a teacher named by configuration trains once into the cache and
is reused; a changed teacher trains anew; an interrupted one resumes."""

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mer_lightning.compare.jobs import generation_seconds
from mer_lightning.core.errors import UserError
from mer_lightning.recipes import teachers
from mer_lightning.recipes.distill import TEACHERS_FILE
from mer_lightning.runs.results import read_results
from mer_lightning.train import run
from tests.helpers import FAST_MODEL, FAST_RUN, REPO, compose_config, fast_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def importable_checkout(monkeypatch):
    """The teacher trains in a `python -m mer_lightning` process: on one thread, with this
    checkout importable."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def spec(seed: int = 1) -> dict:
    overrides = [o for o in FAST_RUN if not o.startswith("callbacks.")] + FAST_MODEL["cnn1"]
    return {"model": "cnn1", "seed": seed, "overrides": overrides}


@pytest.fixture
def trainings(monkeypatch) -> list[list[str]]:
    """Every teacher training the cache starts (its command lines)."""
    started = []
    real_run = teachers.subprocess.run

    def recording_run(command, *args, **kwargs):
        if "--cfg" not in command:
            started.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(teachers.subprocess, "run", recording_run)
    return started


def as_override(teacher: dict) -> str:
    """The teacher spec in Hydra's override grammar."""
    overrides = ",".join(f"'{o}'" for o in teacher["overrides"])
    return f"{{model:{teacher['model']},seed:{teacher['seed']},overrides:[{overrides}]}}"


def student(root: Path, out: Path, cache: Path, seed: int = 1):
    overrides = fast_overrides(
        "cnn2",
        root,
        f"callbacks.distill.teacher={as_override(spec(seed))}",
        f"callbacks.distill.cache_dir={cache}",
    )
    return run(compose_config(overrides, out))


def test_two_students_share_one_teacher_that_trains_once(synthetic_root, tmp_path, trainings):
    cache = tmp_path / "teachers"
    first = student(synthetic_root, tmp_path / "a", cache)
    second = student(synthetic_root, tmp_path / "b", cache)

    assert len(trainings) == 1
    (teacher_dir,) = [p for p in cache.iterdir() if p.is_dir()]
    learnt = [json.loads((tmp_path / s / TEACHERS_FILE).read_text()) for s in ("a", "b")]
    assert learnt[0] == learnt[1] and Path(learnt[0]["teachers"][0]).parent.parent == teacher_dir
    assert "train/distill_loss" in first.history[0] and "train/distill_loss" in second.history[0]
    # Generation time counts the teacher's fit, found through the student's teachers.json.
    teacher = read_results(teacher_dir / "metrics.json")
    seconds = generation_seconds(tmp_path / "a", first, OmegaConf.create())
    assert seconds == pytest.approx(first.fit_seconds + teacher.fit_seconds)


def test_students_started_together_wait_for_one_teacher(synthetic_root, tmp_path, trainings):
    cache = tmp_path / "teachers"
    found: list[Path] = []
    workers = [
        threading.Thread(
            target=lambda: found.append(teachers.ensure_teacher(spec(), str(synthetic_root), cache))
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(trainings) == 1 and len(found) == 2 and found[0] == found[1]


def test_a_changed_teacher_trains_a_new_one_and_an_interrupted_one_resumes(
    synthetic_root, tmp_path, trainings
):
    cache = tmp_path / "teachers"
    one = teachers.ensure_teacher(spec(1), str(synthetic_root), cache)
    other = teachers.ensure_teacher(spec(2), str(synthetic_root), cache)
    assert len(trainings) == 2 and one.parent.parent != other.parent.parent

    run_dir = one.parent.parent
    (run_dir / "metrics.json").unlink()  # killed after its last checkpoint, before its report
    again = teachers.ensure_teacher(spec(1), str(synthetic_root), cache)
    assert again == one and len(trainings) == 3
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["resumed_from"] and Path(resumed["resumed_from"]).name == "last.ckpt"


def test_a_teacher_without_a_model_or_failing_names_the_key(synthetic_root, tmp_path):
    with pytest.raises(UserError, match=r"callbacks\.distill\.teacher=.* must name"):
        teachers.ensure_teacher({"seed": 1}, str(synthetic_root), tmp_path)
    broken = {**spec(), "overrides": [*spec()["overrides"], "data.batch_size=0"]}
    with pytest.raises(UserError, match=r"teacher .* failed .*teacher\.log"):
        teachers.ensure_teacher(broken, str(synthetic_root), tmp_path)
    assert os.listdir(tmp_path)  # its log stays for the user to read


def test_a_key_added_at_its_neutral_value_keeps_cached_teachers(synthetic_root):
    """A config key added later (module.scheduler_interval) does not retrain cached teachers
    while it is at the value that does what its absence did; another value is a new teacher."""
    constant_lr = {**spec(), "overrides": [*spec()["overrides"], "module/scheduler=none"]}
    overrides = teachers.teacher_overrides(constant_lr, str(synthetic_root))
    printed = teachers.subprocess.run(
        [*teachers._command(overrides), "hydra.run.dir=teacher", "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "  scheduler_interval: epoch\n" in printed
    before_the_key = printed.replace("  scheduler_interval: epoch\n", "")

    assert teachers.config_hash(overrides) == sha12(before_the_key)
    assert teachers.config_hash([*overrides, "module.scheduler_interval=step"]) != sha12(
        before_the_key
    )


def sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
