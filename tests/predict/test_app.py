"""`python -m mer_lightning.app`: a real headless browser uploads a face photo and reads the
predicted emotion off the page."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.predict.task import build_predictor
from tests.helpers import CLASSES
from tests.predict.helpers import compose_task, face_photo

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `apt-get install chromium`
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 120  # seconds for the server to answer; a bound, not a timed assert


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_served(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app exited with {server.returncode}: {server.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer on {url}")


@pytest.fixture
def served(checkpoint, tmp_path):
    """The app serving the test checkpoint on 127.0.0.1; stopped after the test."""
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mer_lightning.app",
            f"ckpt={checkpoint}",
            f"port={port}",
            f"hydra.run.dir={tmp_path / 'app_run'}",
            "threads=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": "127.0.0.1"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_the_page_shows_the_emotion_of_an_uploaded_face(served, checkpoint, tmp_path):
    if not CHROMIUM.is_file() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra)")
    photo, _ = face_photo(size=(512, 512))
    upload = tmp_path / "face.png"
    cv2.imwrite(str(upload), photo)
    # What the pipeline says of this photo, to compare with what the page shows.
    from mer_lightning.app.page import analyse

    cfg = compose_task("app", [f"ckpt={checkpoint}"], tmp_path / "expected")
    expected = analyse(
        build_predictor(cfg, load_checkpoint(checkpoint)), cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    )[3]
    assert expected.startswith("face 1: ")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(served)
            page.locator("#photo input[type=file]").set_input_files(str(upload))
            summary = page.locator("#summary textarea")
            sync_api.expect(summary).to_have_value(expected, timeout=60_000)
            label = summary.input_value().split(": ", 1)[1].split(" (")[0]
            assert label in CLASSES
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
