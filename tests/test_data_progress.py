"""The first pass over a data set (decoding and encoding every video's windows into the cache) reported as
its own progress with an ETA: in the trainer's callbacks, the command line's bar and the Jobs tab."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import engine.jobs as jobs_api
import storage
from engine.distill.data_progress import DataProgress
from engine.jobs.distill_job import _ReporterCallbacks
from engine.jobs.reporter import Reporter
from engine.media.video import write_mp4
from studio import jobs


def _folder(folder, n):
    folder.mkdir(parents=True)
    for i in range(n):
        frames = np.full((24, 48, 64, 3), 10 * i, dtype=np.uint8)
        write_mp4(folder / f"clip{i}.mp4", frames, fps=8)
        (folder / f"clip{i}.txt").write_text(f"clip number {i}")
    return folder


def test_reports_are_throttled_the_last_always_comes_and_the_eta_ignores_videos_already_cached():
    now = [100.0]
    reports = []
    progress = DataProgress(lambda *r: reports.append(r), every_s=1.0, clock=lambda: now[0])
    progress(40, 100)  # 40 found in the cache at once: no pace yet
    assert reports == [(40, 100, None)]
    now[0] = 100.5
    progress(41, 100)  # within the second: not shown
    now[0] = 106.0
    progress(46, 100)  # 6 videos in 6 s since the first report: 54 left, 54 s
    assert reports[-1] == (46, 100, 54.0)
    now[0] = 106.1
    progress(100, 100)  # the last report always comes
    assert reports[-1] == (100, 100, 0.0) and len(reports) == 3


def test_a_run_reports_its_data_pass_before_its_first_step_each_video_once_encoded(tmp_path, mini_teacher_dir):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Callbacks, Distiller

    folder = _folder(tmp_path / "data", 3)
    cache = tmp_path / "cache"
    events = []

    class Record(Callbacks):
        def on_data(self, done, total, eta_s):
            events.append(("data", done, total, eta_s, len(list(cache.glob("*-w000.pt")))))

        def on_step(self, step, total, terms, it_per_s, eta_s):
            events.append(("step", step))

    cfg = DistillConfig(
        base=str(mini_teacher_dir),
        data=str(folder),
        steps=1,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        cache_dir=str(cache),
    )
    Distiller(cfg, tmp_path / "run", callbacks=Record()).train()
    data = [e for e in events if e[0] == "data"]
    assert data and data[-1][1:4] == (3, 3, 0.0), events
    assert events.index(data[-1]) < events.index(("step", 1))  # the whole pass before the first step
    assert all(e[1] == e[4] for e in data), events  # each report once that video's windows are on disk


def test_the_command_line_shows_the_data_pass_as_its_own_bar_before_the_steps(tmp_path, mini_teacher_dir):
    folder = _folder(tmp_path / "data", 2)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "distill",
            "--base",
            str(mini_teacher_dir),
            "--data",
            str(folder),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--student-update-freq",
            "2",
            "--lora-rank",
            "4",
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "encoding data (first pass, then cached): 100%" in err and "2/2" in err, err
    assert err.index("encoding data") < err.index("distill:"), err  # no "0/1 steps" bar during the pass


def test_the_jobs_tab_shows_a_jobs_data_pass_then_its_steps(data_dir):
    job = jobs_api.submit(data_dir, "distill", {"steps": 200})
    db = storage.open_database(data_dir)
    running = storage.jobs.claim_next(db)
    callbacks = _ReporterCallbacks(Reporter(db, running))
    callbacks.on_data(120, 2233, 190.0)
    row = storage.jobs.get_job(db, job.id)
    assert jobs.step_cell(row) == "data 120/2233" and "3 min" in jobs.table_html([row])
    callbacks.on_step(1, 200, {"loss_student": 0.5}, 1.0, 199.0)
    assert jobs.step_cell(storage.jobs.get_job(db, job.id)) == "1/200"
