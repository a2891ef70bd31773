"""Compare's and Diversity's requests through real `sample` jobs run by the real worker in its own process (a
real SQLite data folder, the tiny shapes teacher of the test fixtures and its one-step students, conftest
`mini_students`), and the measures of one clip. The tabs' own callbacks are tests/test_studio_compare.py and
tests/test_studio_diversity.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.jobs as jobs_api
import storage
from engine.evaluation import clip_metrics as engine_metrics
from studio import compare, diversity, lineup
from studio.files import public_folder


def _run_worker_until_idle(data_dir) -> None:
    """The real worker, in its own process, until the queue is empty."""
    worker = subprocess.run(
        [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir), "--exit-when-idle", "--poll", "0.2"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]


def test_compare_and_diversity_through_sample_jobs_wait_for_the_worker_then_show_what_the_in_process_path_would(
    data_dir, mini_students, mini_teacher_dir
):
    # both tabs' jobs in one queue, so one worker process serves them (each worker start costs ~8 s here)
    base, public = str(mini_teacher_dir), public_folder(data_dir)
    request = (base, "a blue square", 2, "dmd2", None, 2, 5.0)
    result, pending = compare.queue(data_dir, public, *request)
    assert result is None and len(pending.job_ids) == 2
    assert [jobs_api.get(data_dir, i).kind for i in pending.job_ids] == ["sample", "sample"]
    assert compare.poll(data_dir, public, pending) == (None, "0 of 2 sample jobs done; the worker runs one at a time.")
    grid_request = (base, "a green shape", 2, ["teacher", "dfd"], 2, 5.0)
    grid, grid_pending = diversity.queue(data_dir, public, *grid_request)
    assert grid is None and [jobs_api.get(data_dir, i).kind for i in grid_pending.job_ids] == ["sample", "sample"]
    assert diversity.poll(data_dir, public, grid_pending)[0] is None

    _run_worker_until_idle(data_dir)

    result, progress = compare.poll(data_dir, public, pending)
    assert progress == "" and Path(result.composite).is_file()
    assert "NFE 4" in result.captions["teacher"] and "NFE 4" in result.captions["dmd2"]
    assert "model loading included" in result.note
    cached, again = compare.queue(data_dir, public, *request)  # the same request later: no new jobs
    assert again is None and cached.composite == result.composite

    grid, progress = diversity.poll(data_dir, public, grid_pending)
    assert progress == "" and Path(grid.grid_video).is_file() and Path(grid.still_image).is_file()
    assert list(grid.table.model) == ["teacher", "DFD (shipped)"] and list(grid.table.NFE) == [4, 4]
    cached, again = diversity.queue(data_dir, public, *grid_request)
    assert again is None and cached.grid_video == grid.grid_video
    in_process = diversity.run(data_dir, public, *grid_request)  # same settings and weights: the same cached files
    assert in_process.grid_video == grid.grid_video


def test_a_failed_sample_job_stops_the_wait_with_its_reason(data_dir, mini_teacher_dir):
    from studio import sample_jobs

    [job_id] = sample_jobs.submit(data_dir, [lineup.teacher(str(mini_teacher_dir))], "a shape", [1], 2, 5.0)
    db = storage.open_database(data_dir)
    storage.jobs.claim_next(db)
    storage.jobs.transition(db, job_id, "failed", error="out of memory on the accelerator")
    with pytest.raises(ValueError, match=f"the sample job {job_id} is failed \\(out of memory on the accelerator\\)"):
        sample_jobs.collect(data_dir, [job_id])


def test_one_clip_has_no_diversity_but_its_adherence_and_colour(tmp_path, monkeypatch):
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path)
    clip = np.random.default_rng(1).integers(0, 255, (1, 5, 16, 16, 3), dtype=np.uint8)
    monkeypatch.setattr(engine_metrics, "encoder", lambda spec: pytest.fail("one clip has no diversity to encode"))
    values, note = engine_metrics.clip_metrics(
        clip, "a cat", None, f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"
    )
    assert values["diversity"] is None and "diversity clip" not in values and -1 <= values["adherence"] <= 1
    assert values["saturation"] > 0 and "one clip has no diversity" in note
    if engine_metrics.recognizer() is not None:
        shapes, _ = engine_metrics.clip_metrics(clip, "a red circle", "shapes")
        assert shapes["diversity"] is None and shapes["named correct"] in (0.0, 1.0)
