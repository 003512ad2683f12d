"""Every command-line tool is a console script of pyproject.toml and `python -m <module>`, and
its --help says what it does in one line and shows an example command."""

import importlib
import os
import re
import runpy
import shutil
import subprocess
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from tests.helpers import REPO

# [project.scripts] of pyproject.toml (read without tomllib, which Python 3.10 lacks).
_SECTION = (REPO / "pyproject.toml").read_text().split("[project.scripts]\n")[1].split("\n[")[0]
SCRIPTS = dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', _SECTION, re.MULTILINE))

# The one line each --help opens with (Hydra tools) or puts under its usage (argparse tools).
DESCRIPTIONS = {
    "mer-train": "fit a micro-expression classifier, then test its best checkpoint.",
    "mer-compare": "Write comparison.{md,csv,png} into a Hydra multirun dir and print the table.",
    "mer-evaluate": "test finished runs again, without training.",
    "mer-ensemble": "Test the finished runs of a sweep as one soft-voting ensemble.",
    "mer-predict": "the emotion of each face in a photo, a folder, a video or a webcam.",
    "mer-export": "a trained checkpoint's net as ONNX or TorchScript, with its preprocessing.",
    "mer-audit": "find broken files, odd images, empty class folders and duplicates in a dataset.",
    "mer-bench": "training speed of each model against the references.",
    "mer-trials": "every trial of an Optuna search, best first.",
    "mer-app": "a page in the browser that boxes each face of a photo with its emotion.",
}


def module_of(entry_point: str) -> str:
    """`mer_lightning.compare.__main__:main` -> `mer_lightning.compare`, as `python -m` takes it."""
    return entry_point.split(":")[0].removesuffix(".__main__")


def help_text(script: str, capsys, monkeypatch, as_module: bool = False) -> str:
    """--help of `script` in this process: its console-script function under its own name,
    or (as_module) its module run as `python -m` runs it; fails unless it exits with 0."""
    module, function = SCRIPTS[script].split(":")
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as stop:
        if as_module:
            monkeypatch.setattr(sys, "argv", ["__main__.py", "--help"])
            runpy.run_module(module_of(SCRIPTS[script]), run_name="__main__", alter_sys=True)
        else:
            monkeypatch.setattr(sys, "argv", [script, "--help"])
            sys.exit(getattr(importlib.import_module(module), function)())
    GlobalHydra.instance().clear()
    out = capsys.readouterr().out
    assert stop.value.code in (0, None), out[-3000:]
    return out


def test_every_tool_is_a_console_script():
    assert set(SCRIPTS) == set(DESCRIPTIONS)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, re-running
@pytest.mark.parametrize("script", sorted(DESCRIPTIONS))
def test_help_says_what_the_tool_does_and_shows_an_example(script, capsys, monkeypatch):
    text = help_text(script, capsys, monkeypatch)
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.endswith(DESCRIPTIONS[script]) for line in lines), text[:1500]
    assert "Example" in text
    assert any(line.startswith(f"{script} ") for line in lines), text[:1500]
    by_module = help_text(script, capsys, monkeypatch, as_module=True)
    assert DESCRIPTIONS[script] in by_module and "Example" in by_module


@pytest.mark.parametrize(
    "command", [["-m", "mer_lightning", "--help"], ["-m", "mer_lightning.compare", "--help"]]
)
def test_python_m_help_in_a_fresh_process(command):
    result = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Example" in result.stdout


def test_an_installed_console_script_runs():
    """CI installs the package (pip install -e ".[dev]"), which writes the scripts."""
    script = shutil.which("mer-compare")
    if script is None:
        pytest.skip("the package's console scripts are not installed here")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: mer-compare") and "Example" in result.stdout
