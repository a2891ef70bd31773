"""The Jobs tab's callbacks on a real SQLite data folder: the table and a job's detail (state, progress, ETA,
losses, previews, log), what each state allows, cancel and resume, interrupted jobs after a restart, the
chosen job across a reload, and a job's run config as YAML."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

import engine
import engine.jobs as jobs_api
import storage
from engine.config.files import write_run_config
from engine.media.video import write_mp4
from studio import job_curves, job_detail, jobs
from studio.files import public_folder


def test_a_folder_data_job_header_says_how_many_clips_were_used_and_skipped(data_dir):
    job = jobs_api.submit(data_dir, "distill", {"steps": 5})
    assert "data:" not in jobs.detail(data_dir, public_folder(data_dir), job.id).header  # no data read yet
    report = {
        "source": "/clips",
        "fps": [16.0],
        "num_frames": 81,
        "videos_used": 120,
        "windows": 120,
        "skipped": [["a.mp4", "too short"], ["b.txt", "not UTF-8"], ["c.pdf", "not a video"]],
        "warnings": [],
    }
    (Path(job.dir) / "data.json").write_text(json.dumps(report))
    assert (
        "data: 120 clips at 16 fps (3 skipped: see the log)"
        in jobs.detail(data_dir, public_folder(data_dir), job.id).header
    )
    (Path(job.dir) / "data.json").write_text(json.dumps({**report, "windows": 240, "skipped": []}))
    assert job_detail.data_line(Path(job.dir)) == "data: 120 clips, 240 windows at 16 fps (none skipped)"
    (Path(job.dir) / "data.json").write_text("{half")
    assert job_detail.data_line(Path(job.dir)) is None


def test_a_dfd_job_header_says_on_how_many_student_updates_a_real_clip_was_used(data_dir):
    job = jobs_api.submit(data_dir, "distill", {"steps": 8, "method": "dfd", "force_from_teacher": True})
    db = storage.open_database(data_dir)
    storage.jobs.claim_next(db)
    public = public_folder(data_dir)
    assert "real clip" not in jobs.detail(data_dir, public, job.id).header  # no student update yet
    for step, used in ((2, 0.0), (4, 0.0)):
        storage.outputs.record_progress(db, job.id, step, 8, {"data_forcing": used, "data_forcing_used": used})
    first = jobs.detail(data_dir, public, job.id)
    assert "real clip used on 0 of 2 student updates (none yet" in first.header
    assert "data_forcing_used" not in set(first.diagnostics.name)  # counted, not plotted
    for step, used in ((6, 1.0), (8, 0.0)):
        storage.outputs.record_progress(db, job.id, step, 8, {"data_forcing": used, "data_forcing_used": used})
    later = jobs.detail(data_dir, public, job.id, first.held)  # only the newer points are read, and added
    assert "real clip used on 1 of 4 student updates" in later.header and "none yet" not in later.header
    dmd2 = jobs_api.submit(data_dir, "distill", {"steps": 8, "method": "dmd2"})
    storage.jobs.claim_next(db)
    storage.outputs.record_progress(db, dmd2.id, 2, 8, {"data_forcing_used": 0.0})
    assert "real clip" not in jobs.detail(data_dir, public, dmd2.id).header  # DMD2 never uses one


def test_a_resumed_job_shows_its_checkpoint_until_it_reports_a_new_step(data_dir):
    job = jobs_api.submit(data_dir, "distill", {"steps": 150})
    db = storage.open_database(data_dir)
    storage.jobs.claim_next(db)
    checkpoint = Path(job.dir) / "checkpoints" / "step-0000100"
    checkpoint.mkdir(parents=True)
    storage.outputs.add_checkpoint(db, job.id, 100, checkpoint)
    for step in (100, 109):
        storage.outputs.record_progress(db, job.id, step, 150, {"loss_fake": 0.5, "eta_s": 14.0})
    public = public_folder(data_dir)
    assert "step 109/150" in jobs.detail(data_dir, public, job.id).header
    storage.jobs.transition(db, job.id, "interrupted", reason="worker died")
    jobs_api.resume(data_dir, job.id)
    queued = jobs.detail(data_dir, public, job.id)
    assert "resuming from the checkpoint at step 100/150" in queued.header and "109" not in queued.header
    storage.jobs.claim_next(db)
    storage.outputs.forget_metrics_after(db, job.id, 100)  # as the runner does when it starts the job again
    started = jobs.detail(data_dir, public, job.id, queued.held)
    assert "resuming from the checkpoint at step 100/150" in started.header
    time.sleep(0.01)
    storage.outputs.record_progress(db, job.id, 101, 150, {"loss_fake": 0.4, "eta_s": 20.0})
    moving = jobs.detail(data_dir, public, job.id, started.held)
    assert "step 101/150" in moving.header and "resuming" not in moving.header


def test_previews_show_a_poster_frame_and_the_whole_caption(data_dir, tmp_path):
    clip = np.zeros((5, 16, 16, 3), np.uint8)
    clip[2] = 200  # the middle frame, which the poster shows
    video = write_mp4(tmp_path / "step30-prompt0-seed2.mp4", clip, fps=8)
    caption = "step 30: a red circle moving left on a dark background, then up (seed 2)"
    page = jobs.previews_html([(str(video), caption)])
    assert caption in page and f'src="gradio_api/file={video}"' in page
    assert f'poster="gradio_api/file={video.with_suffix(".png")}"' in page
    assert np.asarray(Image.open(video.with_suffix(".png"))).mean() > 100
    assert "No preview videos yet" in jobs.previews_html([])


def _running_job_with_progress(data_dir: Path) -> str:
    job = jobs_api.submit(data_dir, "distill", {"steps": 5})
    db = storage.open_database(data_dir)
    storage.jobs.claim_next(db)
    for step in (1, 2, 3):
        storage.outputs.record_progress(
            db,
            job.id,
            step,
            5,
            {"loss_student": 1.0 / step, "loss_fake": 0.5, "real_gap": 0.1 * step, "it_per_s": 2.0, "eta_s": 90.0},
        )
    video = write_mp4(Path(job.dir) / "samples" / "step3-prompt0-seed1.mp4", np.zeros((5, 16, 16, 3), np.uint8), fps=8)
    storage.outputs.add_artifact(db, job.id, "video", video, "step 3: a shape (seed 1)")
    (Path(job.dir) / "log.txt").write_text("line one\nstep 3/5 loss_student=0.333\n")
    return job.id


def test_jobs_table_and_detail_show_state_progress_eta_losses_previews_and_log(data_dir):
    job_id = _running_job_with_progress(data_dir)
    public = public_folder(data_dir)

    table = jobs.table_html(jobs_api.list_jobs(data_dir))
    assert job_id in table and "dfd-running" in table and 'style="width:60%"' in table and "3/5" in table
    assert "min" in table  # ETA of about 1.5 minutes

    d = jobs.detail(data_dir, public, job_id)
    assert "**running**" in d.header and "60%" in d.header and "2.00 steps/s" in d.header
    assert set(d.losses.name) == {"loss_student", "loss_fake"} and set(d.diagnostics.name) == {
        "validity gap (real_gap)"
    }
    assert list(d.losses[d.losses.name == "loss_student"].step) == [1, 2, 3]
    [(video, label)] = d.videos
    assert Path(video).is_relative_to(public) and label == "step 3: a shape (seed 1)"  # served from public only
    assert "step 3/5" in d.log and d.can_cancel and not d.can_resume


def test_cancel_and_resume_from_the_jobs_tab(data_dir):
    running = _running_job_with_progress(data_dir)
    assert jobs.cancel(data_dir, running).startswith(f"Cancel requested: job {running} stops at its next step")
    assert not jobs.detail(data_dir, public_folder(data_dir), running).can_cancel

    queued = jobs_api.submit(data_dir, "distill", {"steps": 5}).id
    assert jobs.cancel(data_dir, queued) == f"Job {queued} is cancelled."
    assert jobs.detail(data_dir, public_folder(data_dir), queued).can_resume
    assert jobs.resume(data_dir, queued).startswith(f"Job {queued} is queued again")
    assert "cannot become" in jobs.resume(data_dir, queued)  # a queued job cannot be resumed: the reason is shown


def test_the_jobs_tab_offers_only_what_the_jobs_state_allows(data_dir):
    """Cancel only for queued/running jobs not already asked to stop, Resume only for interrupted, failed or
    cancelled ones; the buttons follow the selection, the state on each poll, and a click at once."""
    db = storage.open_database(data_dir)
    with gr.Blocks():
        ui = jobs.build(data_dir, public_folder(data_dir))

    def buttons(job_id):  # (Cancel, Resume) as the refresh sends them for this selection
        shown = ui["refresh"](job_id, None, ())
        return shown[3]["interactive"], shown[4]["interactive"]

    running = _running_job_with_progress(data_dir)
    assert buttons(running) == (True, False)
    storage.jobs.transition(db, running, "succeeded")
    assert buttons(running) == (False, False)  # a finished job: nothing to cancel or resume
    failed = jobs_api.submit(data_dir, "distill", {"steps": 5}).id
    assert storage.jobs.claim_next(db).id == failed
    storage.jobs.transition(db, failed, "failed")
    assert buttons(failed) == (False, True)
    queued = jobs_api.submit(data_dir, "distill", {"steps": 5}).id
    assert buttons(queued) == (True, False)
    assert buttons(None) == (True, False)  # nothing picked: the newest job (the queued one) is shown
    nothing = jobs.button_states(jobs.detail(data_dir, public_folder(data_dir), None))
    assert [b["interactive"] for b in nothing] == [False, False]

    message, cancel_b, resume_b = ui["act"](jobs.cancel, queued)  # a click: the buttons change with the state
    assert message == f"Job {queued} is cancelled." and (cancel_b["interactive"], resume_b["interactive"]) == (
        False,
        True,
    )
    message, cancel_b, resume_b = ui["act"](jobs.resume, queued)
    assert "queued again" in message and (cancel_b["interactive"], resume_b["interactive"]) == (True, False)


def test_a_job_left_running_by_a_stopped_server_shows_interrupted_and_resumable_after_restart(data_dir):
    job_id = _running_job_with_progress(data_dir)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    storage.jobs.set_pid(storage.open_database(data_dir), job_id, gone.pid)

    jobs_api.reconcile(data_dir)  # what app.py does at start
    d = jobs.detail(data_dir, public_folder(data_dir), job_id)

    assert "**interrupted**" in d.header and "resume to continue" in d.header
    assert d.can_resume and not d.can_cancel


def test_the_jobs_tab_remembers_the_chosen_job_across_a_page_reload(data_dir):
    first = jobs_api.submit(data_dir, "distill", {"steps": 5}).id
    jobs_api.submit(data_dir, "distill", {"steps": 7})
    with gr.Blocks():
        ui = jobs.build(data_dir, public_folder(data_dir))
    fresh_page = ui["refresh"](None, first, ())  # no selection yet; the browser remembers `first`
    assert fresh_page[1]["value"] == first and first in fresh_page[2]
    newest = ui["refresh"](None, None, ())[1]["value"]
    assert newest != first  # nothing remembered: the newest job


def test_the_jobs_tab_offers_a_finished_jobs_run_yaml_from_the_public_folder(data_dir, tmp_path):
    job = jobs_api.submit(data_dir, "distill", {"steps": 5})
    written = engine.build_distill_config(values={**job.config, "steps": 7}, check=False)
    write_run_config(written, Path(job.dir))  # as the trainer does when the run starts
    public = public_folder(data_dir)

    served = Path(jobs.run_config(data_dir, public, job.id))
    assert served.is_relative_to(public) and served.name == "run.yaml"
    assert served.read_text() == (Path(job.dir) / "run.yaml").read_text()
    again = engine.build_distill_config(config_file=served)  # it runs again from the command line as it is
    assert again.steps == 7 and again.lora_rank == 16


def test_a_queued_job_offers_its_stored_config_as_yaml(data_dir):
    job = jobs_api.submit(data_dir, "distill", {"steps": 3, "batch_size": 2, "student_update_freq": 1})
    assert not (Path(job.dir) / "run.yaml").exists()

    served = Path(jobs.run_config(data_dir, public_folder(data_dir), job.id))
    assert served.is_relative_to(public_folder(data_dir)) and not (Path(job.dir) / "run.yaml").exists()
    loaded = engine.build_distill_config(config_file=served)
    assert (loaded.steps, loaded.batch_size, loaded.student_update_freq) == (3, 2, 1)
    assert jobs.run_config(data_dir, public_folder(data_dir), None) is None
    assert jobs.run_config(data_dir, public_folder(data_dir), "j-nosuchjob") is None


def test_a_prompt_in_the_header_is_shown_as_text_not_as_markdown_or_html(data_dir):
    from markdown_it import MarkdownIt

    prompt = "a cat ![x](http://beacon.example/p.png) <img src=http://beacon.example/q.png> [link](http://x) **bold**"
    job = jobs_api.submit(data_dir, "sample", {"prompt": prompt, "seeds": [1]})
    header = jobs.detail(data_dir, public_folder(data_dir), job.id).header

    rendered = MarkdownIt("commonmark").render(header)  # what the page's Markdown component makes of it
    assert "<img" not in rendered and "<a " not in rendered and "<strong>bold" not in rendered
    assert "![x](http://beacon.example/p.png)" in rendered.replace("&lt;", "<")  # the text itself is all there


def test_downsampled_curves_keep_at_most_2000_points_with_spikes_first_and_last():
    points = [(step, 1.0 / step) for step in range(1, 200_001)]
    points[123_456] = (123_457, 50.0)  # one spike
    kept = job_curves.downsample(points)
    assert len(kept) <= job_curves.MAX_PLOTTED + 1
    assert kept[0] == points[0] and kept[-1] == points[-1] and (123_457, 50.0) in kept
    assert [s for s, _ in kept] == sorted(s for s, _ in kept)
    again = job_curves.downsample(kept + [(200_001 + i, 0.0) for i in range(100)])  # a later tick's new points
    assert len(again) <= job_curves.MAX_PLOTTED + 1 and (123_457, 50.0) in again and again[-1] == (200_100, 0.0)
    assert job_curves.downsample(points[:10]) == points[:10]


def test_each_refresh_reads_only_the_metric_points_stored_since_the_last(data_dir, monkeypatch):
    job_id = _running_job_with_progress(data_dir)
    with gr.Blocks():
        ui = jobs.build(data_dir, public_folder(data_dir))
    asked = []
    real_metrics = jobs_api.metrics

    def metrics(*args, **kwargs):  # the storage read the page makes, counted
        found = real_metrics(*args, **kwargs)
        asked.append((kwargs.get("after_id"), len(found)))
        return found

    monkeypatch.setattr(jobs_api, "metrics", metrics)
    first = ui["refresh"](job_id, None, ())
    assert asked == [(None, 15)]  # 3 steps x 5 terms, the first time
    db = storage.open_database(data_dir)
    storage.outputs.record_progress(db, job_id, 4, 5, {"loss_student": 0.2, "loss_fake": 0.4, "real_gap": 0.4})
    second = ui["refresh"](job_id, None, first[-2])
    assert asked[-1][1] == 3 and asked[-1][0] is not None  # only the new step's points
    losses = second[5]["value"]
    assert list(losses[losses.name == "loss_student"].step) == [1, 2, 3, 4]
    third = ui["refresh"](job_id, None, second[-2])
    assert asked[-1][1] == 0 and third[5] == gr.skip()  # nothing new: the plots are not sent again


def test_the_jobs_tab_says_whether_the_worker_runs(data_dir):
    from engine.jobs import health

    jobs_api.submit(data_dir, "distill", {"steps": 5})
    with gr.Blocks():
        ui = jobs.build(data_dir, public_folder(data_dir))
    assert ui["refresh"](None, None, ())[-1] == "worker: not started (queued jobs wait)"
    health.beat(data_dir, started_at=1.0)  # this process stands in for a worker that beats
    assert ui["refresh"](None, None, ())[-1].startswith("worker: running (pid ")
    health.stopped(data_dir, "OperationalError: database is locked")
    line = ui["refresh"](None, None, ())[-1]
    assert line.startswith("worker: stopped since ") and "(OperationalError: database is locked)" in line
