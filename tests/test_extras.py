"""Features of a pip extra, asked for without it, stop at once with the extra and the pip
command (exit 2); a plain install runs without them."""

import os
import subprocess
import sys

import pytest

from mer_lightning import __main__ as train_main
from mer_lightning import trials
from mer_lightning.runs import extras
from tests.helpers import REPO

SEARCH_MODULES = ("optuna", "hydra_plugins.hydra_optuna_sweeper")
LAUNCHER_MODULES = (
    "joblib",
    "submitit",
    "hydra_plugins.hydra_joblib_launcher",
    "hydra_plugins.hydra_submitit_launcher",
)


def hide(monkeypatch, *modules: str) -> None:
    """Make `modules` look uninstalled to the extras check."""
    real = extras._importable
    monkeypatch.setattr(extras, "_importable", lambda name: name not in modules and real(name))


@pytest.mark.parametrize(
    ("override", "extra"),
    [
        ("hparams_search=optuna", "search"),
        ("+hparams_search=optuna", "search"),
        ("hydra/sweeper=optuna", "search"),
        ("hydra/launcher=joblib", "launchers"),
        ("hydra/launcher=submitit_local", "launchers"),
        ("hydra/launcher=slurm", "launchers"),
    ],
)
def test_a_feature_without_its_extra_names_the_extra_and_the_pip_command(
    override, extra, monkeypatch, capsys
):
    hide(monkeypatch, *SEARCH_MODULES, *LAUNCHER_MODULES)
    monkeypatch.setattr(sys, "argv", ["mer-train", "model=cnn2", override])
    with pytest.raises(SystemExit) as stop:
        train_main.main()
    assert stop.value.code == 2
    out = capsys.readouterr().out
    assert out.startswith(f"error: {override.lstrip('+')} needs the [{extra}] extra")
    assert f'pip install -e ".[{extra}]"' in out


def test_installed_extras_and_other_overrides_pass_the_check():
    assert extras.missing_extra_problems(["hparams_search=optuna", "hydra/launcher=joblib"]) == []
    assert extras.missing_extra_problems(["model=cnn2", "hydra/launcher=basic", "-m"]) == []


def test_trials_without_optuna_names_the_search_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if never installed
    with pytest.raises(SystemExit) as stop:
        trials.main([f"sqlite:///{tmp_path / 'search.db'}"])
    assert stop.value.code == 2
    out = capsys.readouterr().out
    assert "mer_lightning.trials (mer-trials) needs the [search] extra" in out
    assert 'pip install -e ".[search]"' in out


def without(modules: tuple[str, ...], *args: str, tmp_path) -> subprocess.CompletedProcess:
    """`python -m mer_lightning args...` in a Python where `modules` cannot be imported (a
    sitecustomize puts None in sys.modules for them, as for an uninstalled package)."""
    (tmp_path / "sitecustomize.py").write_text(
        f"import sys\nfor name in {modules!r}:\n    sys.modules[name] = None\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "mer_lightning", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_plain_run_composes_without_the_search_extra(tmp_path):
    plain = without(SEARCH_MODULES, "--cfg", "job", tmp_path=tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "Error importing" not in plain.stderr  # no plugin of this project needs optuna
    search = without(SEARCH_MODULES, "hparams_search=optuna", tmp_path=tmp_path)
    assert search.returncode == 2
    assert "needs the [search] extra" in search.stdout and "Traceback" not in search.stderr


def test_a_plain_run_composes_without_the_launchers_extra(tmp_path):
    plain = without(LAUNCHER_MODULES, "--cfg", "job", tmp_path=tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "mer_lightning_sweeper" not in plain.stderr
    joblib = without(
        LAUNCHER_MODULES, "-m", "model=cnn1,cnn2", "hydra/launcher=joblib", tmp_path=tmp_path
    )
    assert joblib.returncode == 2
    assert "needs the [launchers] extra" in joblib.stdout
