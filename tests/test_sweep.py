"""Real multiruns of the CLI: launchers, the comparison report, failed jobs, TensorBoard.

Each sweep runs `python -m mer_lightning` in a subprocess, so Hydra's sweeper, launchers and
callbacks really run. The three models are the paper's, made narrow (tiny_* configs below,
found through hydra.searchpath) so that a sweep takes seconds on two CPU cores.
"""

import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import joblib
import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from mer_lightning.trials import main as list_trials
from tests.helpers import FAST_RUN

REPO = Path(__file__).resolve().parents[1]
TINY = {  # test-only model configs: the paper's models, narrow
    "tiny_cnn1": "defaults: [cnn1, _self_]\nchannels: [8, 16, 16]\nhidden: [32, 32]\n",
    "tiny_cnn2": "defaults: [cnn2, _self_]\nchannels: [8, 16, 16, 16]\nhidden: [32, 32]\n",
    "tiny_resnet18": "defaults: [resnet18, _self_]\nreduction_dim: 32\n",
    # composes, then fails when the net is built (a crash inside a job)
    "broken": "defaults: [cnn1, _self_]\nname: broken\nchannels: []\n",
}
TINY_MODELS = "tiny_cnn1,tiny_cnn2,tiny_resnet18"


@pytest.fixture(scope="module")
def extra_conf(tmp_path_factory) -> Path:
    """A config dir with the tiny model configs, for hydra.searchpath."""
    root = tmp_path_factory.mktemp("conf")
    (root / "model").mkdir()
    for name, text in TINY.items():
        (root / "model" / f"{name}.yaml").write_text(text)
    return root


def run_cli(
    *overrides: str, cwd: Path, module: str = "mer_lightning", threads: int | None = 1
) -> subprocess.CompletedProcess:
    """`python -m <module> overrides...` from `cwd`, with this checkout importable.

    One torch thread per process by default: the test machines' few cores are shared, and
    oversubscribed threads make a ResNet-18 step several times slower.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def sweep_args(extra_conf: Path, data_root: Path, sweep_dir: Path) -> list[str]:
    return [
        f"hydra.searchpath=[file://{extra_conf}]",
        f"hydra.sweep.dir={sweep_dir}",
        f"data.root={data_root}",
        *(o for o in FAST_RUN if not o.startswith("data.batch_size=")),
        "data.batch_size=32",  # fewer optimizer steps: a ResNet-18 step is the slow part
        "callbacks.model_summary=null",
    ]


def job_metrics(sweep_dir: Path) -> dict[str, dict]:
    """metrics.json of every job, by job dir name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


def table(md: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in md.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def expected_cell(values: list[float]) -> str:
    """Accuracy cell as the report must show it: % with 2 decimals, ± sample std."""
    mean = f"{100 * statistics.mean(values):.2f}"
    return mean if len(values) == 1 else f"{mean} ± {100 * statistics.stdev(values):.2f}"


def check_report(sweep_dir: Path, seeds: int) -> dict[str, list[str]]:
    """The report files agree with the jobs' metrics.json; returns the Markdown table."""
    metrics = job_metrics(sweep_dir)
    assert len(metrics) == 3 * seeds
    by_model: dict[str, list[dict]] = {}
    for m in metrics.values():
        by_model.setdefault(m["model"], []).append(m)
    rows = table((sweep_dir / "comparison.md").read_text())
    models = rows[""]
    assert models == ["cnn1", "cnn2", "resnet18"]
    assert rows["Train"] == [expected_cell([m["train_acc"] for m in by_model[k]]) for k in models]
    assert rows["Test"] == [expected_cell([m["test_acc"] for m in by_model[k]]) for k in models]
    seconds = {k: statistics.mean(m["fit_seconds"] for m in by_model[k]) for k in models}
    fastest_first = sorted(models, key=lambda k: (seconds[k], k))
    assert rows["Generation order"] == [str(fastest_first.index(k) + 1) for k in models]
    assert rows["Runs"] == [str(seeds)] * 3
    with (sweep_dir / "comparison.csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    assert len(csv_rows) == 3 * seeds and {r["status"] for r in csv_rows} == {"completed"}
    for row in csv_rows:
        assert float(row["test_acc"]) == metrics[row["dir"]]["test_acc"]
    assert (sweep_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rows


@pytest.mark.slow
@pytest.mark.heavy
def test_compare_experiment_with_seeds_on_the_basic_launcher(extra_conf, synthetic_root, tmp_path):
    sweep_dir = tmp_path / "multirun"
    result = run_cli(
        "experiment=compare",  # a multirun by itself: no -m
        f"hydra.sweeper.params.model='{TINY_MODELS}'",  # the sweep of the experiment
        "seed=1,2",
        "data.include_originals=false",
        *sweep_args(extra_conf, synthetic_root, sweep_dir),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = check_report(sweep_dir, seeds=2)
    assert all(" ± " in cell for cell in rows["Train"] + rows["Test"])
    assert "Model comparison: multirun" in result.stdout  # the rich table
    assert all(name in result.stdout for name in ("Generation order", "resnet18"))

    # TensorBoard on the multirun dir: one run per job, named by the job's overrides.
    events = EventMultiplexer().AddRunsFromDirectory(str(sweep_dir))
    events.Reload()
    jobs = sorted(p.parent.name for p in sweep_dir.glob("*/metrics.json"))
    assert sorted(events.Runs()) == [f"{job}/tensorboard" for job in jobs]
    assert {job.split(",seed=")[0].split("model=")[1] for job in jobs} == set(
        TINY_MODELS.split(",")
    )
    for run in events.Runs():
        assert "test/acc" in events.GetAccumulator(run).Tags()["scalars"]


@pytest.mark.slow
@pytest.mark.heavy
def test_optuna_search_tunes_on_validation_only_and_continues_its_study(
    extra_conf, synthetic_root, tmp_path
):
    def search(sweep_dir: Path, trials: int) -> subprocess.CompletedProcess:
        return run_cli(
            "hparams_search=optuna",  # a multirun by itself: no -m
            "experiment=best",
            "model=tiny_cnn1",
            f"hydra.sweeper.n_trials={trials}",
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
            "trainer.max_epochs=2",
            *sweep_args(extra_conf, synthetic_root, sweep_dir),
            cwd=tmp_path,
        )

    first = tmp_path / "search"
    result = search(first, trials=3)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = job_metrics(first)
    assert sorted(trials) == ["trial_0", "trial_1", "trial_2"]
    assert all(m["test_acc"] is None for m in trials.values())  # the search never ran test/
    assert not any(key.startswith("test/") for m in trials.values() for key in m["metrics"])

    found = OmegaConf.load(first / "optimization_results.yaml")
    searched = OmegaConf.load(REPO / "conf/hparams_search/optuna.yaml").hydra.sweeper.params
    assert set(found.best_params) == set(searched)
    assert found.best_value == max(m["val_acc"] for m in trials.values())
    best = next(n for n, m in trials.items() if m["val_acc"] == found.best_value)
    used = OmegaConf.load(first / best / ".hydra/config.yaml")
    assert used.module.optimizer.lr == found.best_params["module.optimizer.lr"]
    assert used.module.optimizer._target_ == "torch.optim.AdamW"  # experiment=best underneath

    # Continued into the same sweep dir, the new trial_0 would overwrite the old: it refuses.
    kept = (first / "trial_0" / "metrics.json").read_text()
    refused = search(first, trials=1)
    assert "already holds a run" in refused.stderr + refused.stdout
    assert (first / "trial_0" / "metrics.json").read_text() == kept

    # In a new sweep dir the study goes on from its storage: the winner is over every trial.
    second = tmp_path / "search_part2"
    result = search(second, trials=1)
    assert result.returncode == 0, result.stderr[-3000:]
    every_trial = [*trials.values(), *job_metrics(second).values()]
    assert len(every_trial) == 4
    # It proposes new values, not the first part's start-up trials again (same sampler seed).
    tried = [set(OmegaConf.load(d / ".hydra/overrides.yaml")) for d in first.glob("trial_*")]
    continued = set(OmegaConf.load(second / "trial_0/.hydra/overrides.yaml"))
    assert all(continued != earlier for earlier in tried)
    found = OmegaConf.load(second / "optimization_results.yaml")
    assert found.best_value == max(m["val_acc"] for m in every_trial)

    # The study's record: every trial of both parts, the best first, the refused one failed.
    trials_md = tmp_path / "search.md"
    assert list_trials([f"sqlite:///{tmp_path / 'study.db'}", "--out", str(trials_md)]) == 0
    rows = [line.split(" | ") for line in trials_md.read_text().splitlines()[6:]]
    assert len(rows) == 5 and [row[1] for row in rows].count("FAIL") == 1
    assert rows[0][1:3] == ["COMPLETE", f"{found.best_value:.4f}"]


@pytest.mark.slow
@pytest.mark.heavy
def test_three_models_on_submitit_local_then_rebuild(extra_conf, synthetic_root, tmp_path):
    sweep_dir = tmp_path / "multirun"
    result = run_cli(
        "-m",
        f"model={TINY_MODELS}",
        "hydra/launcher=submitit_local",
        *sweep_args(extra_conf, synthetic_root, sweep_dir),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((sweep_dir / ".submitit").iterdir())) >= 3  # one submitit job per point
    check_report(sweep_dir, seeds=1)

    written = {name: (sweep_dir / name).read_text() for name in ("comparison.md", "comparison.csv")}
    for name in ("comparison.md", "comparison.csv", "comparison.png"):
        (sweep_dir / name).unlink()
    rebuilt = run_cli(str(sweep_dir), cwd=tmp_path, module="mer_lightning.compare")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert {name: (sweep_dir / name).read_text() for name in written} == written
    assert (sweep_dir / "comparison.png").is_file()


@pytest.mark.slow
def test_failed_jobs_stop_neither_the_sweep_nor_the_report(extra_conf, synthetic_root, tmp_path):
    sweep_dir = tmp_path / "multirun"
    result = run_cli(
        "-m",
        "model=tiny_cnn1,bogus,broken",  # bogus does not compose, broken crashes in its job
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *sweep_args(extra_conf, synthetic_root, sweep_dir),
        cwd=tmp_path,
        threads=None,  # joblib sets the threads of its workers
    )
    assert result.returncode == 1, result.stderr[-3000:]  # after the report: a job failed
    md = (sweep_dir / "comparison.md").read_text()
    failed = md[md.index("## Jobs without results") :].splitlines()[4:]
    assert failed[0] == (  # the job's own one-line error, as a single run would print it
        "| 1 | model=broken | UserError: model.channels=[] must be a non-empty list of integers "
        ">= 1, one conv width per block, e.g. [32,64,128] |"
    )
    assert (
        failed[1]
        == "| — | model=bogus | MissingConfigException: In 'train': Could not find 'model/bogus' |"
    )
    rows = table(md)
    assert rows[""] == ["cnn1", "broken", "bogus"] and rows["Runs"] == ["1", "0 of 1", "0 of 1"]
    assert float(rows["Test"][0]) == pytest.approx(
        100 * next(iter(job_metrics(sweep_dir).values()))["test_acc"], abs=0.005
    )
    with (sweep_dir / "comparison.csv").open() as handle:
        statuses = [(r["job"], r["override.model"], r["status"]) for r in csv.DictReader(handle)]
    assert statuses == [
        ("0", "tiny_cnn1", "completed"),
        ("1", "broken", "failed"),
        ("", "bogus", "failed"),
    ]
    assert "Jobs without results" in result.stdout

    # joblib's workers share the cores: each job starts with cores // n_jobs torch threads.
    threads = max(1, joblib.cpu_count() // 2)
    for log in sweep_dir.glob("*/__main__.log"):
        assert f"torch threads at job start: {threads}\n" in log.read_text()


@pytest.mark.slow
def test_one_job_sweeps_into_one_sweep_dir_keep_their_own_job_dirs(
    extra_conf, synthetic_root, tmp_path
):
    """Nothing varies in a one-job sweep: its job dir is named by all its overrides, so a second
    one-job sweep with other settings into the same sweep dir leaves the first job's files."""
    sweep_dir = tmp_path / "multirun"
    for seed in (1, 2):  # broken fails fast, after Hydra has made its job dir
        result = run_cli(
            "-m",
            "model=broken",
            f"seed={seed}",
            *sweep_args(extra_conf, synthetic_root, sweep_dir),
            cwd=tmp_path,
        )
        assert result.returncode == 1, result.stderr[-3000:]

    jobs = [p.parent.name.split(",") for p in sweep_dir.glob("*/failure.json")]
    assert len(jobs) == 2 and all(job[0].startswith("0_") for job in jobs)
    assert all("model=broken" in job for job in jobs)
    assert sorted(o for job in jobs for o in job if o.startswith("seed=")) == ["seed=1", "seed=2"]


FAKE_SLURM = {  # just enough of SLURM for submitit to write and "submit" its sbatch script
    "srun": "#!/bin/sh\nexit 0\n",
    "sbatch": "#!/bin/sh\n"
    'for a in "$@"; do case "$a" in *.sh) cp "$a" "$(dirname "$0")/job.sh";; esac; done\n'
    'echo "Submitted batch job 4242"\n',
    "sacct": "#!/bin/sh\nexit 1\n",
}


@pytest.mark.slow
def test_slurm_launcher_submits_one_array_task_per_point_with_its_gpus(tmp_path):
    """hydra/launcher=slurm with trainer=ddp on 4 GPUs: the sbatch script submitit writes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKE_SLURM.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mer_lightning", "-m", "model=cnn1,cnn2,resnet18"]
    command += ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"]
    command += ["trainer.devices=4", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    # The launcher then waits for the jobs forever: stop it once the script is submitted.
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as launcher:
        try:
            deadline = time.monotonic() + 120
            while not (bin_dir / "job.sh").is_file() and time.monotonic() < deadline:
                assert launcher.poll() is None, "the launcher stopped before submitting"
                time.sleep(0.5)
        finally:
            os.killpg(launcher.pid, signal.SIGTERM)
    script = (bin_dir / "job.sh").read_text()
    sbatch = dict(
        line[len("#SBATCH --") :].split("=", 1)
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    assert sbatch["array"] == "0-2%3"  # one array task per sweep point
    assert sbatch["gpus-per-node"] == "4" and sbatch["ntasks-per-node"] == "4"  # DDP: 1 per GPU
    assert sbatch["partition"] == "gpu" and sbatch["nodes"] == "1"
    assert sbatch["output"].startswith(str(tmp_path / "multirun" / ".submitit"))
