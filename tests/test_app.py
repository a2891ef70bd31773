"""The real app on 127.0.0.1: it starts, shows the built-in teacher's samples in a real browser, and
serves no file outside its public folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("studio_data")
    port = _free_port()
    log = open(data_dir / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--no-worker"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited early:\n{(data_dir / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        else:
            raise RuntimeError("app did not answer within 120 s")
        yield url, data_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (scripts/test.sh installs it)")
def test_app_opens_in_a_browser_with_the_built_in_teachers_samples(app_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, data_dir = app_server
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.get_by_text("DFD Studio").first.wait_for(timeout=60_000)
            gallery = page.locator("#samples-gallery")
            gallery.locator("video").first.wait_for(state="attached", timeout=120_000)
            assert gallery.locator("video").count() >= 1
            page.get_by_text("The built-in teacher").first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "samples.png"), full_page=True)
        finally:
            browser.close()
    assert len(list((data_dir / "public" / "previews").rglob("*.mp4"))) == 4


def test_the_database_and_files_outside_the_public_folder_cannot_be_downloaded(app_server):
    url, data_dir = app_server
    secret = data_dir / "studio.db"
    secret.write_bytes(b"SQLite format 3\x00 secret")
    for target in (secret, ROOT / "app.py", Path("/etc/passwd")):
        for prefix in ("gradio_api/file=", "file="):
            assert _status(url + prefix + str(target)) in (403, 404), target
