"""The comparison report, built from hand-made multirun dirs whose numbers are known."""

import csv
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mer_lightning.compare import build_report
from mer_lightning.compare.__main__ import main as compare_main
from mer_lightning.compare.plot import comparison_figure
from mer_lightning.hydra_callbacks import ComparisonReport
from mer_lightning.runs.failures import COMPOSE_FAILURES_FILE, first_line, write_failure
from mer_lightning.runs.results import read_results
from tests.helpers import CLASSES, compose_config

REPO = Path(__file__).resolve().parents[1]


def metrics_json(model: str, seed: int, train: float, test: float, seconds: float) -> dict:
    """A metrics.json as train.run writes it, with made-up numbers."""
    f1 = {name: round(test - 0.01 * i, 4) for i, name in enumerate(CLASSES)}
    return {
        "model": model,
        "seed": seed,
        "epochs": 30,
        "parameters": {"cnn1": 3_107_335, "resnet18": 11_442_759}[model],
        "precision": "32-true",
        "fit_seconds": seconds,
        "train_images_per_second": 6840 / seconds,
        "train_images_seen": 6840,
        "train_acc": train,
        "val_acc": test,
        "test_acc": test,
        "test_f1_macro": statistics.fmean(f1.values()),
        "classes": list(CLASSES),
        "best_checkpoint": "checkpoints/epoch029.ckpt",
        "metrics": {"test/acc": test, **{f"test/f1/{k}": v for k, v in f1.items()}},
        "per_class": {
            k: {"precision": v, "recall": v, "f1": v, "support": 6} for k, v in f1.items()
        },
        "history": [],
    }


def make_job(sweep: Path, num: int, overrides: list[str], model: str, **files) -> Path:
    """A job dir as Hydra leaves it, plus `metrics` (metrics.json) or `error` (failure.json)."""
    name = ",".join(o for o in overrides if not o.startswith("data.root"))
    job = sweep / f"{num}_{name}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra/overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra/hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    (job / ".hydra/config.yaml").write_text(yaml.safe_dump({"model": {"name": model}}))
    if "metrics" in files:
        (job / "metrics.json").write_text(json.dumps(files["metrics"]))
    if "error" in files:
        write_failure(job, files["error"])
    return job


RUNS = {  # model -> per seed (train acc, test acc, fit seconds)
    "cnn1": [(0.90, 0.80, 10.0), (0.92, 0.82, 12.0), (0.94, 0.84, 14.0)],
    "resnet18": [(0.96, 0.78, 5.0), (0.98, 0.79, 5.0), (0.97, 0.80, 5.0)],
}


@pytest.fixture
def seed_sweep(tmp_path) -> Path:
    """model=cnn1,resnet18 seed=1,2,3, with the numbers of RUNS."""
    sweep = tmp_path / "multirun"
    num = 0
    for model, runs in RUNS.items():
        for seed, (train, test, seconds) in enumerate(runs, start=1):
            overrides = [f"model={model}", f"seed={seed}", "data.root=/scratch/data"]
            metrics = metrics_json(model, seed, train, test, seconds)
            make_job(sweep, num, overrides, model, metrics=metrics)
            num += 1
    return sweep


def table(md: str) -> dict[str, list[str]]:
    """The Markdown comparison table as {row name: cells}, header row under ""."""
    rows = [line.strip("|").split("|") for line in md.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def mean_std(values, scale=1.0, spec=".2f") -> str:
    values = [v * scale for v in values]
    return f"{statistics.mean(values):{spec}} ± {statistics.stdev(values):{spec}}"


def test_seeds_give_mean_and_std_and_generation_order(seed_sweep):
    build_report(seed_sweep)
    rows = table((seed_sweep / "comparison.md").read_text())

    assert rows[""] == ["cnn1", "resnet18"]
    assert rows["Train"] == ["92.00 ± 2.00", "97.00 ± 1.00"]
    assert rows["Test"] == ["82.00 ± 2.00", "79.00 ± 1.00"]
    assert rows["Generation order"] == ["2", "1"]  # resnet18 fits in 5 s, cnn1 in 12 s
    assert rows["Fit seconds"] == ["12.0 ± 2.0", "5.0 ± 0.0"]
    assert rows["Parameters"] == ["3,107,335", "11,442,759"]
    assert rows["Precision"] == ["32-true", "32-true"]
    assert rows["Runs"] == ["3", "3"]
    for i, name in enumerate(CLASSES):
        expected = [
            mean_std([t - 0.01 * i for _, t, _ in RUNS[m]], spec=".3f")
            for m in ("cnn1", "resnet18")
        ]
        assert rows[f"F1 {name}"] == expected
    assert "Jobs without results" not in (seed_sweep / "comparison.md").read_text()


def test_precision_row_shows_every_precision_a_model_trained_in(seed_sweep):
    """Fit seconds compare fairly only within one precision: a sweep resumed on a machine
    where trainer.precision=auto resolves otherwise must show it."""
    jobs = sorted(seed_sweep.glob("*_model=resnet18,*"))
    for job, precision in zip(jobs, ["bf16-mixed", None], strict=False):
        metrics = json.loads((job / "metrics.json").read_text())
        metrics.pop("precision")
        if precision:
            metrics["precision"] = precision
        (job / "metrics.json").write_text(json.dumps(metrics))
    build_report(seed_sweep)

    rows = table((seed_sweep / "comparison.md").read_text())
    assert rows["Precision"] == ["32-true", "bf16-mixed, —, 32-true"]  # — : not recorded
    with (seed_sweep / "comparison.csv").open() as handle:
        by_dir = {r["dir"]: r["precision"] for r in csv.DictReader(handle)}
    assert by_dir[jobs[0].name] == "bf16-mixed" and by_dir[jobs[1].name] == ""


def test_csv_has_one_row_per_job_with_overrides_and_metrics(seed_sweep):
    build_report(seed_sweep)
    with (seed_sweep / "comparison.csv").open() as handle:
        rows = list(csv.DictReader(handle))

    assert [(r["job"], r["override.model"], r["override.seed"]) for r in rows] == [
        (str(n), model, str(seed))
        for n, (model, seed) in enumerate((m, s) for m in RUNS for s in (1, 2, 3))
    ]
    assert {r["override.data.root"] for r in rows} == {"/scratch/data"}
    assert {r["status"] for r in rows} == {"completed"}
    assert [float(r["test_acc"]) for r in rows] == [t for runs in RUNS.values() for _, t, _ in runs]
    assert [r["generation_order"] for r in rows] == ["2"] * 3 + ["1"] * 3
    assert rows[0]["test/f1/fear"] == "0.78" and rows[0]["test/support/fear"] == "6"
    assert rows[0]["dir"] == "0_model=cnn1,seed=1"


def test_plot_has_a_labelled_point_per_model_with_error_bars(seed_sweep):
    report = build_report(seed_sweep)
    assert (seed_sweep / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ax = comparison_figure(report.groups, "t").axes[0]
    assert sorted(text.get_text() for text in ax.texts) == ["cnn1", "resnet18"]
    bars = ax.containers  # one errorbar per model and accuracy (test, train)
    assert len(bars) == 4 and all(bar.has_xerr and bar.has_yerr for bar in bars)
    test_point = bars[0].lines[0].get_xydata()[0]
    assert test_point == pytest.approx([12.0, 82.0])


def retest(job: Path, overrides: str, test_acc: float) -> None:
    """The metrics.json `python -m mer_lightning.evaluate` leaves in a re-tested job."""
    out = job / "evaluate" / overrides
    out.mkdir(parents=True)
    retested = {"kind": "evaluate", "classes": list(CLASSES), "run_dir": str(job)}
    (out / "metrics.json").write_text(
        json.dumps(retested | {"test_acc": test_acc, "test_f1_macro": 0.5})
    )


def test_val_rows_show_the_score_that_chose_each_checkpoint_and_the_last_epochs_mean(tmp_path):
    """Recipes are chosen on val: the table shows each run's best-checkpoint val and its mean
    val over the last 10 validated epochs (from the history), mean ± std over seeds."""
    sweep = tmp_path / "multirun"
    curves = {1: [0.50 + 0.01 * e for e in range(12)], 2: [0.60 + 0.01 * e for e in range(12)]}
    for seed, curve in curves.items():
        metrics = {**metrics_json("cnn1", seed, 0.9, 0.8, 10.0), "val_acc": max(curve)}
        metrics["history"] = [{"epoch": float(e), "val/acc": v} for e, v in enumerate(curve)]
        metrics["history"].append({"epoch": 12.0, "train/acc": 0.95})  # an epoch not validated
        make_job(sweep, seed - 1, ["model=cnn1", f"seed={seed}"], "cnn1", metrics=metrics)
    unvalidated = {**metrics_json("resnet18", 1, 0.9, 0.8, 5.0), "val_acc": None}
    make_job(sweep, 2, ["model=resnet18", "seed=1"], "resnet18", metrics=unvalidated)
    build_report(sweep)
    md = (sweep / "comparison.md").read_text()
    rows = table(md)

    assert rows["Val"] == [mean_std([0.61, 0.71], 100), "—"]
    # seed 1: epochs 2-11 of 0.50 + 0.01 e -> 0.565; seed 2 -> 0.665
    assert rows["Val, last 10 epochs"] == [mean_std([0.565, 0.665], 100), "—"]
    assert list(rows).index("Val") < list(rows).index("Test")
    with (sweep / "comparison.csv").open() as handle:
        tails = [r["val_acc_last_10"] for r in csv.DictReader(handle)]
    assert [float(t) for t in tails[:2]] == pytest.approx([0.565, 0.665]) and tails[2] == ""


def finished_run(run_dir: Path, seconds: float, teachers: list[Path] = ()) -> Path:
    """A finished run's dir as training leaves it, distilled from `teachers` (checkpoints)."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = {
        "model": {"name": "cnn1"},
        "module": {"distill": {"teachers": list(map(str, teachers))}},
    }
    (run_dir / ".hydra/config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "metrics.json").write_text(json.dumps(metrics_json("cnn1", 1, 0.9, 0.8, seconds)))
    return run_dir / "checkpoints" / "epoch029.ckpt"


def test_a_distilled_models_generation_time_includes_its_teachers_training(tmp_path):
    """A student cannot train before its teachers, so the paper's generation order ranks it
    by its fit plus theirs (and their own teachers'), not by its fit alone."""
    grand = finished_run(tmp_path / "runs/grand", 40.0)
    teacher = finished_run(tmp_path / "runs/teacher", 60.0, teachers=[grand])
    sweep = tmp_path / "multirun"
    student = make_job(
        sweep, 0, ["model=cnn1"], "cnn1", metrics=metrics_json("cnn1", 1, 0.9, 0.84, 30.0)
    )
    config = {"model": {"name": "cnn1"}, "module": {"distill": {"teachers": [str(teacher)]}}}
    (student / ".hydra/config.yaml").write_text(yaml.safe_dump(config))
    plain = metrics_json("resnet18", 1, 0.9, 0.8, 50.0)
    make_job(sweep, 1, ["model=resnet18"], "resnet18", metrics=plain)

    report = build_report(sweep)
    rows = table((sweep / "comparison.md").read_text())
    assert rows["Fit seconds"] == ["30.0", "50.0"]
    assert rows["Generation seconds"] == ["130.0", "50.0"]  # 30 + 60 + 40
    assert rows["Generation order"] == ["2", "1"]  # by fit seconds alone cnn1 would be first
    with (sweep / "comparison.csv").open() as handle:
        assert [float(r["generation_seconds"]) for r in csv.DictReader(handle)] == [130.0, 50.0]
    ax = comparison_figure(report.groups, "t").axes[0]
    assert ax.containers[0].lines[0].get_xydata()[0] == pytest.approx([130.0, 84.0])

    (tmp_path / "runs/grand/metrics.json").unlink()  # a teacher's run is not on this machine
    build_report(sweep)
    md = (sweep / "comparison.md").read_text()
    rows = table(md)
    assert rows["Generation seconds"] == ["—", "50.0"]
    assert rows["Generation order"] == ["—", "1"]  # no rank from a partial sum
    assert "cannot be read from here" in md


def test_without_a_distilled_model_there_is_no_generation_seconds_row(seed_sweep):
    build_report(seed_sweep)
    assert "Generation seconds" not in table((seed_sweep / "comparison.md").read_text())


def test_the_papers_figures_and_retests_sit_under_our_numbers(seed_sweep):
    jobs = sorted(p for p in seed_sweep.iterdir() if p.is_dir())  # cnn1 seeds 1-3, resnet18 1-3
    for job, acc in zip(jobs[:5], (0.81, 0.83, 0.85, 0.77, 0.79), strict=True):
        retest(job, "data.dedup=true", acc)  # resnet18 seed 3 not re-tested yet
    retest(jobs[0], "default", 0.80)  # without overrides: repeats Test, gets no row
    report = build_report(seed_sweep)
    md = (seed_sweep / "comparison.md").read_text()
    rows = table(md)

    assert rows["Train, paper"] == ["91.20", "94.20"]  # Table 1: CNN1, ResNet-18
    assert rows["Test, paper"] == ["82.53", "80.81"]
    assert rows["Macro F1, paper"] == ["0.790", "—"]  # Figure 6 is CNN1's report
    assert rows["F1 fear, paper"] == ["0.610", "—"]
    assert rows["Test, data.dedup=true"] == [
        mean_std([0.81, 0.83, 0.85], 100),
        "— (2 of 3 re-tested)",  # a mean over 2 of 3 seeds would pass for all three
    ]
    assert "Test, default" not in rows
    assert "Sánchez García" in md and "mer_lightning.evaluate" in md
    with (seed_sweep / "comparison.csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    assert "test_acc[default]" not in csv_rows[0]
    assert [r["test_acc[data.dedup=true]"] for r in csv_rows] == [
        "0.81",
        "0.83",
        "0.85",
        "0.77",
        "0.79",
        "",
    ]
    ax = comparison_figure(report.groups, "t").axes[0]
    dashed = [line.get_ydata() for line in ax.lines if line.get_linestyle() == "--"]
    paper_lines = sorted(y[0] for y in dashed if len(y))  # the legend's proxy line is empty
    assert paper_lines == pytest.approx([80.81, 82.53])


def test_models_the_paper_did_not_train_get_no_paper_rows(tmp_path):
    sweep = tmp_path / "multirun"
    metrics = {**metrics_json("cnn1", 42, 0.9, 0.8, 10.0), "model": "tiny_cnn"}
    make_job(sweep, 0, ["model=tiny_cnn"], "tiny_cnn", metrics=metrics)
    md = (build_report(sweep), sweep / "comparison.md")[1].read_text()
    assert not [name for name in table(md) if "paper" in name or name.startswith("Test, ")]
    assert "Sánchez García" not in md and "mer_lightning.evaluate" not in md


def test_single_runs_have_no_std_and_no_error_bars(tmp_path):
    sweep = tmp_path / "multirun"
    for num, (model, runs) in enumerate(RUNS.items()):
        make_job(sweep, num, [f"model={model}"], model, metrics=metrics_json(model, 42, *runs[0]))
    report = build_report(sweep)
    rows = table((sweep / "comparison.md").read_text())
    assert rows["Train"] == ["90.00", "96.00"] and rows["Test"] == ["80.00", "78.00"]
    assert rows["Generation order"] == ["2", "1"]
    ax = comparison_figure(report.groups, "t").axes[0]
    assert not any(bar.has_xerr or bar.has_yerr for bar in ax.containers)


def test_failed_jobs_are_listed_with_the_first_line_of_their_error(tmp_path):
    sweep = tmp_path / "multirun"
    make_job(sweep, 0, ["model=cnn1"], "cnn1", metrics=metrics_json("cnn1", 42, 0.9, 0.8, 10.0))
    oom = RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")
    make_job(sweep, 1, ["model=resnet18"], "resnet18", error=oom)
    make_job(sweep, 2, ["model=cnn2"], "cnn2")  # killed on the cluster: no result file at all
    (sweep / COMPOSE_FAILURES_FILE).write_text(
        json.dumps([{"overrides": ["model=bogus"], "error": "MissingConfigException: no bogus"}])
    )
    report = build_report(sweep)
    md = (sweep / "comparison.md").read_text()

    assert [job.status for job in report.jobs] == ["completed", "failed", "no result", "failed"]
    failed = md[md.index("## Jobs without results") :].splitlines()[4:7]
    assert failed[0] == "| 1 | model=resnet18 | RuntimeError: CUDA out of memory. |"
    assert failed[1].startswith("| 2 | model=cnn2 | no metrics.json and no failure.json")
    assert failed[2] == "| — | model=bogus | MissingConfigException: no bogus |"
    rows = table(md)
    assert rows[""] == ["cnn1", "resnet18", "cnn2", "bogus"]
    assert rows["Test"] == ["80.00", "—", "—", "—"]
    assert rows["Runs"] == ["1", "0 of 1", "0 of 1", "0 of 1"]
    with (sweep / "comparison.csv").open() as handle:
        statuses = [(r["job"], r["status"], r["error"]) for r in csv.DictReader(handle)]
    assert statuses[1] == ("1", "failed", "RuntimeError: CUDA out of memory.")
    assert statuses[3] == ("", "failed", "MissingConfigException: no bogus")


def test_a_job_that_failed_then_finished_on_resume_counts_as_completed(tmp_path):
    sweep = tmp_path / "multirun"
    metrics = metrics_json("cnn1", 42, 0.9, 0.8, 10.0)
    make_job(sweep, 0, ["model=cnn1"], "cnn1", error=RuntimeError("killed"), metrics=metrics)
    report = build_report(sweep)
    assert [job.status for job in report.jobs] == ["completed"]
    assert "## Jobs without results" not in (sweep / "comparison.md").read_text()


def test_a_sweep_ends_green_beside_jobs_another_call_is_still_training(tmp_path, caplog):
    """Two calls share a sweep dir (models or seeds added later): the call whose jobs all
    finished exits 0 and names the other's job; a failed job still fails the call."""
    sweep = tmp_path / "multirun"
    make_job(sweep, 0, ["seed=1"], "resnet18", metrics=metrics_json("resnet18", 1, 0.9, 0.8, 5))
    make_job(sweep, 1, ["model=cnn2"], "cnn2")  # the other call's job, still training
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})

    ComparisonReport().on_multirun_end(config)
    assert "1 of 2 jobs" in caplog.text and "1_model=cnn2" in caplog.text
    assert "resume=true" in caplog.text
    assert compare_main([str(sweep)]) == 1  # the standalone check still says: not all done

    make_job(sweep, 2, ["model=cnn1"], "cnn1", error=RuntimeError("diverged"))
    with pytest.raises(SystemExit) as stop:
        ComparisonReport().on_multirun_end(config)
    assert stop.value.code == 1 and "1 of 3 jobs failed" in caplog.text


def test_other_swept_settings_make_their_own_columns(tmp_path):
    sweep = tmp_path / "multirun"
    for num, lr in enumerate(("0.001", "0.01")):
        overrides = ["model=cnn1", f"module.optimizer.lr={lr}"]
        metrics = metrics_json("cnn1", 42, 0.9, 0.8 + num / 10, 10.0 + num)
        make_job(sweep, num, overrides, "cnn1", metrics=metrics)
    rows = table((build_report(sweep), sweep / "comparison.md")[1].read_text())
    assert rows[""] == ["cnn1 module.optimizer.lr=0.001", "cnn1 module.optimizer.lr=0.01"]
    assert rows["Test"] == ["80.00", "90.00"]


@pytest.mark.heavy
def test_not_swept_puts_seeds_with_a_restated_default_in_one_column(tmp_path):
    # seed 1 ran with the default; seeds 2 and 3 were added later with that default spelled out
    sweep = tmp_path / "multirun"
    for num, (train, test, seconds) in enumerate(RUNS["cnn1"]):
        restated = ["module.tta_hflip=false"] if num else []
        overrides = ["model=cnn1", f"seed={num + 1}", *restated]
        make_job(
            sweep,
            num,
            overrides,
            "cnn1",
            metrics=metrics_json("cnn1", num + 1, train, test, seconds),
        )

    split = table((build_report(sweep), sweep / "comparison.md")[1].read_text())
    assert split[""] == ["cnn1", "cnn1 module.tta_hflip=False"]  # as Hydra parses it

    result = run_compare(str(sweep), "--not-swept", "module.tta_hflip")
    assert result.returncode == 0, result.stderr
    md = (sweep / "comparison.md").read_text()
    rows = table(md)
    assert rows[""] == ["cnn1"]
    assert rows["Runs"] == ["3"]
    assert rows["Test"] == [mean_std([test for _, test, _ in RUNS["cnn1"]], scale=100)]
    assert "as if none had overridden `module.tta_hflip`" in md
    with (sweep / "comparison.csv").open() as handle:  # the CSV still tells the jobs apart
        rows_csv = list(csv.DictReader(handle))
    assert [row["override.module.tta_hflip"] for row in rows_csv] == ["", "False", "False"]

    typo = run_compare(str(sweep), "--not-swept", "module.tta_hflp")
    assert typo.returncode == 2
    assert "module.tta_hflp" in typo.stdout and "module.tta_hflip" in typo.stdout
    every_model = run_compare(str(sweep), "--not-swept", "model")
    assert every_model.returncode == 2 and "names the columns" in every_model.stdout


def test_first_line_keeps_what_went_wrong():
    assert first_line(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    hydra_style = KeyError("Error in call to target 'x.Net':\nIndexError('list index')")
    assert first_line(RuntimeError(str(hydra_style.args[0]))) == (
        "RuntimeError: Error in call to target 'x.Net': IndexError('list index')"
    )
    assert first_line(RuntimeError()) == "RuntimeError"


def run_compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mer_lightning.compare", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rebuilds_the_report_of_a_copied_cluster_dir(seed_sweep, tmp_path):
    build_report(seed_sweep)
    names = ("comparison.md", "comparison.csv")
    expected = {name: (seed_sweep / name).read_text() for name in names}
    copy = tmp_path / "downloaded" / seed_sweep.name  # e.g. rsync'ed from the cluster
    copy.parent.mkdir()
    seed_sweep.rename(copy)
    for name in expected:
        (copy / name).unlink()

    result = run_compare(str(copy))
    assert result.returncode == 0, result.stderr
    assert "Model comparison" in result.stdout and "resnet18" in result.stdout
    for name, text in expected.items():
        assert (copy / name).read_text() == text
    assert (copy / "comparison.png").is_file()


def test_cli_explains_a_dir_without_jobs(tmp_path):
    missing = run_compare(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a directory" in missing.stdout
    empty = run_compare(str(tmp_path))
    assert empty.returncode == 2 and "no Hydra jobs" in empty.stdout


def test_a_job_dir_linked_into_the_sweep_is_compared(tmp_path, seed_sweep):
    """A finished run reused by a link (a distillation teacher) counts as a job of the sweep."""
    sweep = tmp_path / "teachers"
    sweep.mkdir()
    job = next(seed_sweep.glob("0_*"))
    (sweep / job.name).symlink_to(job, target_is_directory=True)

    result = build_report(sweep)

    assert [j.dir.name for j in result.jobs] == [job.name]
    assert "cnn1" in (sweep / "comparison.md").read_text()


def test_publish_copies_the_report_and_each_completed_jobs_results(tmp_path):
    sweep = tmp_path / "multirun"
    done = make_job(sweep, 0, ["model=cnn1"], "cnn1", metrics=metrics_json("cnn1", 1, 0.9, 0.8, 1))
    (done / "classification_report.txt").write_text("report of cnn1")
    (done / "confusion_matrix.png").write_bytes(b"\x89PNG fake")
    (done / "checkpoints").mkdir()
    (done / "checkpoints/epoch029.ckpt").write_bytes(b"weights")
    (done / "evaluate/data.dedup=true").mkdir(parents=True)
    retest = metrics_json("cnn1", 1, 0.9, 0.81, 1) | {"run_dir": str(done), "trained_test_acc": 0.8}
    (done / "evaluate/data.dedup=true/metrics.json").write_text(json.dumps(retest))
    (sweep / "evaluation_data.dedup=true.csv").write_text("run,model\n")
    (sweep / "ensemble/default").mkdir(parents=True)
    for name in ("ensemble.md", "metrics.json", "confusion_matrix.csv"):
        (sweep / "ensemble/default" / name).write_text(name)
    make_job(sweep, 1, ["model=resnet18"], "resnet18", error=RuntimeError("out of memory"))
    out = tmp_path / "docs" / "results" / "paper"

    result = run_compare(str(sweep), "--publish", str(out))
    assert result.returncode == 1, result.stderr  # a job failed: still published, still says so
    published = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert published == [
        "0_model=cnn1/classification_report.txt",
        "0_model=cnn1/confusion_matrix.png",
        "0_model=cnn1/evaluate/data.dedup=true/metrics.json",
        "0_model=cnn1/metrics.json",
        "comparison.csv",
        "comparison.md",
        "comparison.png",
        "ensemble/default/ensemble.md",
        "ensemble/default/metrics.json",
        "evaluation_data.dedup=true.csv",
    ]
    assert (out / "comparison.md").read_text() == (sweep / "comparison.md").read_text()
    assert (out / "0_model=cnn1/classification_report.txt").read_text() == "report of cnn1"

    again = run_compare(str(sweep), "--publish", str(out))  # never overwrites published results
    assert again.returncode == 2 and "is not empty" in again.stdout


def test_a_published_folder_holds_no_absolute_path(tmp_path):
    """Run dirs, checkpoints, teachers and the dataset are named relative to the sweep dir or
    to data.root in every text file of a published folder, which still loads as results."""
    sweep = tmp_path / "multirun"
    root = tmp_path / "datasets" / "Micro_Expressions"
    teacher = tmp_path / "teachers" / "resnet18" / "checkpoints" / "epoch031.ckpt"
    metrics = metrics_json("cnn1", 1, 0.9, 0.8, 1)
    job = make_job(sweep, 0, ["model=cnn1", f"data.root={root}"], "cnn1", metrics=metrics)
    overrides = ["model=cnn1", f"data.root={root}", f"callbacks.distill.teachers=[{teacher}]"]
    (job / ".hydra/overrides.yaml").write_text(yaml.safe_dump(overrides))
    metrics |= {
        "kind": "train",
        "schema_version": 2,
        "data": {"root": str(root), "test_images": 6},
        "resumed_from": str(job / "checkpoints" / "last.ckpt"),
    }
    (job / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (job / "predictions.csv").write_text(f"split,file,label\ntest,{root}/test/fear/1.jpg,fear\n")
    retested = job / "evaluate" / "data.dedup=true"
    retested.mkdir(parents=True)
    evaluation = metrics | {
        "kind": "evaluate",
        "run_dir": str(job),
        "overrides": ["data.dedup=true"],
    }
    (retested / "metrics.json").write_text(json.dumps(evaluation | {"trained_test_acc": 0.8}))
    (sweep / "ensemble" / "default").mkdir(parents=True)
    member = {"run": job.name, "predictions": [str(job / "predictions.csv")]}
    ensemble = metrics | {"kind": "ensemble", "model": "soft vote", "members": [member]}
    (sweep / "ensemble" / "default" / "metrics.json").write_text(json.dumps(ensemble))
    out = tmp_path / "published"

    assert compare_main([str(sweep), "--publish", str(out)]) == 0

    texts = {p: p.read_text() for p in out.rglob("*") if p.suffix in {".json", ".csv", ".md"}}
    assert len(texts) == 6
    for path, text in texts.items():
        assert str(tmp_path) not in text, path
        assert not re.search(r"(?<![\w.~/:-])/[\w.-]+/", text), (path, text)
    published = read_results(out / job.name / "metrics.json")
    assert published.data["root"] == "Micro_Expressions"
    assert published.resumed_from == f"{job.name}/checkpoints/last.ckpt"
    assert (
        read_results(out / job.name / "evaluate/data.dedup=true/metrics.json").run_dir == job.name
    )
    assert "test,test/fear/1.jpg,fear" in texts[out / job.name / "predictions.csv"]
    csv_text = texts[out / "comparison.csv"]
    assert "../teachers/resnet18/checkpoints/epoch031.ckpt" in csv_text
    assert read_results(out / "ensemble" / "default" / "metrics.json").kind == "ensemble"


def test_local_ddp_is_refused_inside_a_multirun(tmp_path, monkeypatch):
    from mer_lightning.__main__ import check_no_relaunch_in_multirun
    from mer_lightning.core.errors import UserError

    for name in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    check_no_relaunch_in_multirun(compose_config([], tmp_path))
    with pytest.raises(UserError, match="re-running the whole sweep"):
        check_no_relaunch_in_multirun(compose_config(["trainer=ddp"], tmp_path))


def test_compare_experiment_is_the_three_model_sweep_under_the_paper_protocol(tmp_path):
    cfg = compose_config(["experiment=compare"], tmp_path)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.hydra.sweeper.params == {"model": "cnn1,cnn2,resnet18"}
    assert cfg.data.include_originals is True and cfg.module.optimizer.lr == 1.0e-3
