"""The janitor (studio/janitor.py) sweeps old and oversized uploads, renders and temp files but never what a
live job reads, and the real app starts it when others can reach it."""

from __future__ import annotations

import os
import time

import numpy as np

from engine.jobs import list_jobs
from form_helpers import captioned_clips, form
from studio import distill, janitor
from studio.access import LOCAL
from studio.files import uploads_folder


def _aged(path, days):
    stamp = time.time() - days * 86400
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (stamp, stamp), follow_symlinks=False)
    return path


def test_the_janitor_sweeps_by_age_and_size_but_keeps_what_a_live_job_reads(data_dir, tmp_path):
    temp = tmp_path / "gradio-temp"
    env = {"GRADIO_TEMP_DIR": str(temp)}
    up = uploads_folder(data_dir)
    used = _aged(captioned_clips(up / "data" / "used"), 30)  # old, but a queued job trains on it
    old = _aged(captioned_clips(up / "data" / "old"), 30)
    fresh = captioned_clips(up / "data" / "fresh")
    render = _aged(_file(data_dir / "public" / "compare-abc.mp4", 1000), 30)
    upload_tmp = _aged(_file(temp / "abc" / "clips.zip", 1000).parent, 30)
    cache = _aged(_file(data_dir / "cache" / "entry" / "w.pt", 1000).parent, 30)
    distill.launch(data_dir, form(data_source="folder", data_folder=str(used), batch_size=2), None, None, LOCAL)
    assert len(list_jobs(data_dir, states=["queued"])) == 1

    swept = janitor.sweep(data_dir, keep_days=7, keep_mb=1024, environ=env)
    assert sorted(p.name for p in swept.removed) == ["abc", "compare-abc.mp4", "old"]
    assert used.is_dir() and fresh.is_dir() and cache.exists()  # a queued job: the cache is in use
    assert not old.exists() and not render.exists() and not upload_tmp.exists()

    _file(up / "data" / "big" / "x.mp4", 3 * 1024**2)
    swept = janitor.sweep(data_dir, keep_days=7, keep_mb=2, environ=env)  # over the size budget: oldest go first
    assert sorted(p.name for p in swept.removed) == ["big", "fresh"]  # "big" is newest but the budget is not met
    assert used.is_dir() and cache.exists() and swept.kept_bytes <= 2 * 1024**2


def _file(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).bytes(size))
    return path


def test_the_real_app_sweeps_old_uploads_when_others_can_reach_it(tmp_path):
    """`python app.py --host 0.0.0.0` (public) starts the janitor: an upload untouched for longer than
    DFD_STUDIO_KEEP_DAYS is gone soon after the start, and the app says so in its output."""
    import socket
    import subprocess
    import sys

    from conftest import ROOT, wait_for

    data = tmp_path / "studio_data"
    old = _aged(captioned_clips(uploads_folder(data) / "data" / "old"), 3)
    fresh = captioned_clips(uploads_folder(data) / "data" / "fresh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a public studio starts only with a login (docs/security.md): a password of 12+ characters
    env = {
        **os.environ,
        "DFD_STUDIO_KEEP_DAYS": "1",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "DFD_STUDIO_PASSWORD": "a-long-enough-password",
    }
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "0.0.0.0", "--port", str(port), "--data-dir", str(data), "--no-worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def swept():
            if proc.poll() is not None:
                raise AssertionError(f"app exited early:\n{(tmp_path / 'app.log').read_text()[-2000:]}")
            return not old.exists()

        wait_for(swept, 120, "the janitor to remove the old upload", every=0.5)
        wait_for(
            lambda: "janitor removed 1 old files and folders" in (tmp_path / "app.log").read_text(),
            30,
            "the janitor's line in the app's output",
            every=0.5,
        )
        assert fresh.is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
