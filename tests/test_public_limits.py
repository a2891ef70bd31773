"""A public studio bounds what a visitor may ask of the machine (studio/limits.py): an over-limit form, a data-set
config's repeats, a full queue, a short disk, the small-entry zip bomb and a zip's scan are each refused in one
line before anything is queued or kept, the owner's environment variables move each bound, and the janitor
sweeps old and oversized uploads, renders and temp files but never what a live job reads (studio/janitor.py)."""

from __future__ import annotations

import os
import time
import zipfile

import numpy as np
import pytest

from engine.jobs import list_jobs
from form_helpers import captioned_clips, form
from studio import access_from_env, distill, janitor
from studio.access import LOCAL
from studio.files import uploads_folder


def _public(data_dir, **env):
    return access_from_env(data_dir, True, env)


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"steps": 1_000_000},
            (
                "steps 1000000 is more than this public studio allows: at most 5000 (the owner can "
                "change it with DFD_STUDIO_MAX_STEPS)"
            ),
        ),
        ({"batch_size": 4096}, "batch_size 4096 is more than this public studio allows: at most clips per update 16"),
        ({"batch_size": 8, "grad_accum": 4}, "batch_size 8 x grad_accum 4 is more than this public studio allows"),
        ({"checkpoint_every": 1}, "checkpoint_every 1 is more often than this public studio allows: every 50 steps"),
        (
            {"preview_every": 1},
            ("preview_every 1 is more often than this public studio allows: every 50 steps at most often, or 0"),
        ),
        (
            {"log_with": "wandb"},
            ("log_with wandb is off on this public studio (a tracker logs to the owner's account): choose none"),
        ),
        ({"data": "folder", "num_frames": 4093}, "num_frames 4093 is more than this public studio allows: at most 81"),
        ({"data": "folder", "height": 4096}, "height 4096 is more than this public studio allows: at most 832"),
    ],
)
def test_an_over_limit_form_is_refused_on_a_public_studio_and_taken_locally(data_dir, values, message):
    values = dict(values)
    if values.pop("data", None):
        values.update(data_source="folder", data_folder=str(captioned_clips(uploads_folder(data_dir) / "clips")))
    values = {"batch_size": 2, **values}
    launched, job_id = distill.launch(data_dir, form(**values), None, None, _public(data_dir))
    assert job_id is None and launched.startswith(f"**Cannot launch:** {message}"), launched
    assert list_jobs(data_dir) == []
    if "num_frames" not in values and "height" not in values:  # the local check of those reads the clips' length
        assert distill.check(data_dir, form(**values), None, None, LOCAL).startswith("**Ready.**")


def test_the_owner_moves_each_bound_by_environment_variables(data_dir):
    owner = _public(
        data_dir,
        DFD_STUDIO_MAX_STEPS="2000000",
        DFD_STUDIO_MAX_BATCH="64",
        DFD_STUDIO_MIN_INTERVAL="1",
        DFD_STUDIO_TRACKERS="tensorboard",
    )
    values = {
        "steps": 1_000_000,
        "batch_size": 8,
        "grad_accum": 4,
        "checkpoint_every": 1,
        "preview_every": 1,
        "log_with": "tensorboard",
    }
    assert distill.check(data_dir, form(**values), None, None, owner).startswith("**Ready.**")
    assert "log_with wandb is off" in distill.check(data_dir, form(log_with="wandb"), None, None, owner)
    with pytest.raises(ValueError, match="DFD_STUDIO_MAX_STEPS='many' is not a whole number"):
        _public(data_dir, DFD_STUDIO_MAX_STEPS="many")


def test_a_data_set_config_repeats_past_the_public_bound_are_refused(data_dir, tmp_path):
    from engine.datasets.dataset_config import check_data_spec
    from engine.datasets.sources import DataError

    clips = captioned_clips(uploads_folder(data_dir) / "clips")
    config = uploads_folder(data_dir) / "set.yaml"
    config.write_text("folders:\n  - path: clips\n    repeats: 11\n")
    refused = (
        f"{config}: folders[0].repeats 11 is more than this public studio allows: at most 10 (the owner can "
        "change it with DFD_STUDIO_MAX_REPEATS)."
    )
    values = form(data_source="folder", data_folder=str(config), batch_size=2)
    assert distill.check(data_dir, values, None, None, _public(data_dir)) == f"**Cannot launch:** {refused}"
    assert distill.folder_note(str(config), "shapes-tiny", access=_public(data_dir)) == f"**Data refused:** {refused}"
    assert distill.check(data_dir, values, None, None, _public(data_dir, DFD_STUDIO_MAX_REPEATS="20")).startswith(
        "**Ready.**"
    )
    upload = tmp_path / "sent.yaml"
    upload.write_text(f"folders:\n  - path: {clips}\n    repeats: 11\n")
    saved, note = distill.upload_data_config(data_dir, str(upload), access=_public(data_dir))
    assert saved is None and note.startswith("**Config refused:** sent.yaml: folders[0].repeats 11 is more than")
    assert not any((uploads_folder(data_dir) / "dataset-config").rglob("*.yaml"))  # nothing of the refusal kept
    config.write_text("folders:\n  - path: clips\n    repeats: 1000000\n")  # any user: entries x repeats in memory
    with pytest.raises(DataError, match=r"folders\[0\].repeats must be at most 1000, got 1000000"):
        check_data_spec(str(config))


def test_a_full_queue_refuses_another_launch(data_dir):
    public = _public(data_dir, DFD_STUDIO_MAX_QUEUED="2")
    for _ in range(2):
        assert distill.launch(data_dir, form(), None, None, public)[1] is not None
    message, job_id = distill.launch(data_dir, form(), None, None, public)
    assert job_id is None and message == (
        "**Cannot launch:** 2 jobs are already waiting in this public studio's "
        "queue, the most it holds; launch again when one has started (the owner "
        "can change it with DFD_STUDIO_MAX_QUEUED)."
    )
    assert len(list_jobs(data_dir)) == 2
    assert distill.launch(data_dir, form(), None, None, LOCAL)[1] is not None  # the owner's own studio: no cap


def test_a_short_disk_refuses_a_job_and_an_upload_with_nothing_written(data_dir, tmp_path, monkeypatch):
    clip = captioned_clips(tmp_path / "clips", names=("a",))
    upload = tmp_path / "clips.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for path in clip.iterdir():
            archive.write(path, path.name)
    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", str(10**12))  # more than any disk has
    message, job_id = distill.launch(data_dir, form(), None, None, _public(data_dir))
    assert job_id is None and message.startswith("**Cannot launch:** this machine's disk has ")
    assert "MB free, less than the 1000000000000 MB the studio keeps free, so the job cannot start now" in message
    assert list_jobs(data_dir) == []
    kept, note = distill.upload_data(data_dir, str(upload))
    assert kept is None and note.startswith("**Upload refused:** unpacking the zip needs ")
    assert "which would leave less than the" in note
    assert [p for p in uploads_folder(data_dir).rglob("*") if p.is_file()] == []


def test_the_small_entry_zip_bomb_is_refused_by_the_whole_zips_ratio(data_dir, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(40):  # each under the per-entry check's 1 MiB, together 40 MiB
            archive.writestr(f"clip{i}.mp4", b"\x00" * (1024**2 - 1))
            archive.writestr(f"clip{i}.txt", b"a shape")
    ratio = 40 * (1024**2 - 1) / bomb.stat().st_size
    assert ratio > 500  # measured 2026-12-04: 850x (49,342 bytes unpacking to 40 MiB)
    kept, note = distill.upload_data(data_dir, str(bomb), access=_public(data_dir))
    assert kept is None and note == (
        f"**Upload refused:** the zip unpacks to {ratio:.0f}x its size (more than 20x; "
        "videos barely compress): it looks like a zip bomb, refusing it (the owner can change it with "
        "DFD_STUDIO_MAX_ZIP_RATIO)."
    )
    assert [p for p in uploads_folder(data_dir).rglob("*") if p.is_file()] == []


def test_a_public_scan_reads_a_bounded_number_of_video_headers(data_dir, tmp_path, monkeypatch):
    from engine.datasets import video_windows

    clips = captioned_clips(uploads_folder(data_dir) / "many", names=("a", "b", "c", "d"))
    probed = []
    real_probe = video_windows.probe
    monkeypatch.setattr(video_windows, "probe", lambda path, *a: probed.append(path.name) or real_probe(path, *a))
    note = distill.folder_note(str(clips), "shapes-tiny", access=_public(data_dir, DFD_STUDIO_MAX_SCAN="1"))
    assert probed == ["a.mp4"]
    assert note == (
        "**Data:** 4 usable clips of 4 videos; 3 of them not opened here (counted as one window each; the "
        "job reads them when it runs)."
    )
    assert distill.folder_note(str(clips), "shapes-tiny", access=LOCAL) == "**Data:** 4 usable clips of 4 videos."
    assert len(probed) == 5


def test_visitors_may_not_read_the_data_dir_beyond_uploads(data_dir):
    public = _public(data_dir)
    jobs = data_dir / "jobs"
    jobs.mkdir(parents=True)
    message = distill.check(data_dir, form(data_source="folder", data_folder=str(jobs)), None, None, public)
    assert message.startswith(
        f"**Cannot launch:** {jobs} is outside the folders this studio may read ({uploads_folder(data_dir)})"
    )


def test_a_run_config_naming_paths_a_visitor_may_not_read_is_refused_unprobed(data_dir, tmp_path):
    outside = captioned_clips(tmp_path / "outside")
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {outside}\nbatch_size: 2\n")
    values, note = distill.form_from_config(str(config), "shapes-tiny", _public(data_dir), data_dir)
    assert values is None and note.startswith(f"**Config refused:** run.yaml: {outside} is outside the folders")
    values, note = distill.form_from_config(str(config), "shapes-tiny", LOCAL, data_dir)
    assert values["data_folder"] == str(outside)
    inside = uploads_folder(data_dir) / "set.yaml"  # a data-set config a visitor may name, naming a folder elsewhere
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text(f"folders:\n  - path: {tmp_path / 'absent'}\n")
    config.write_text(f"data: {inside}\n")
    values, note = distill.form_from_config(str(config), "shapes-tiny", _public(data_dir), data_dir)
    assert values is None  # "is outside", not "is not a folder": the named folder is not even probed
    assert note.startswith(f"**Config refused:** run.yaml: {inside}: folders[0].path {tmp_path / 'absent'} is outside")


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


def test_compare_and_diversity_sample_jobs_count_against_the_queue_cap(data_dir):
    from studio import compare, diversity
    from studio.files import public_folder

    public, shown = _public(data_dir, DFD_STUDIO_MAX_QUEUED="1"), public_folder(data_dir)
    result, pending = compare.queue(
        data_dir, shown, "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, access=public
    )
    assert result is None and len(pending.job_ids) == 1
    with pytest.raises(ValueError, match="^1 job is already waiting in this public studio's queue"):
        compare.queue(data_dir, shown, "shapes-tiny", "a blue square", 1, None, None, 50, 5.0, access=public)
    with pytest.raises(ValueError, match="^1 job is already waiting in this public studio's queue"):
        diversity.queue(data_dir, shown, "shapes-tiny", "a cat", 2, ["teacher"], access=public)
    assert len(list_jobs(data_dir)) == 1


def _sample(data_dir, tab, prompt, identity, visitor):
    """Queue the teacher's sample job of a Compare ("compare") or Diversity ("diversity") request as `visitor`."""
    from studio import compare, diversity
    from studio.files import public_folder

    public, shown = _public(data_dir), public_folder(data_dir)
    if tab == "compare":
        request = ("shapes-tiny", prompt, 1, None, None, 50, 5.0)
        return compare.queue(data_dir, shown, *request, access=public, identity=identity, visitor=visitor)[1]
    request = ("shapes-tiny", prompt, 2, ["teacher"])
    return diversity.queue(data_dir, shown, *request, access=public, identity=identity, visitor=visitor)[1]


def test_sample_jobs_are_the_visitors_and_count_in_their_cap_of_active_jobs(data_dir):
    from engine.jobs import get
    from studio import jobs
    from studio.identity import Identity

    visitors = Identity(True, "olga", max_active_jobs=2)
    first = _sample(data_dir, "compare", "a red circle", visitors, "bob")
    second = _sample(data_dir, "diversity", "a cat", visitors, "bob")
    assert [get(data_dir, i).submitted_by for i in first.job_ids + second.job_ids] == ["bob", "bob"]
    with pytest.raises(ValueError) as refused:
        _sample(data_dir, "compare", "a blue square", visitors, "bob")
    assert str(refused.value) == (
        "you already have 2 jobs queued or running, the most this studio allows a visitor at once (2); wait for "
        "one to finish or cancel one (the owner can change it with DFD_STUDIO_MAX_ACTIVE_JOBS)"
    )
    assert _sample(data_dir, "compare", "a blue square", visitors, "ann") is not None  # bob's cap is his own
    assert _sample(data_dir, "diversity", "a dog", visitors, "olga") is not None  # the owner has none
    assert "queued by someone else" in jobs.cancel(data_dir, first.job_ids[0], visitors, "ann")
    assert jobs.cancel(data_dir, first.job_ids[0], visitors, "bob") == f"Job {first.job_ids[0]} is cancelled."
    assert _sample(data_dir, "compare", "a blue square", visitors, "bob") is not None  # one finished: room again

    _sample(data_dir, "compare", "a red circle", visitors, None)  # open mode: who did not sign in shares one cap
    _sample(data_dir, "diversity", "a cat", visitors, None)
    with pytest.raises(ValueError, match=r"^visitors who have not signed in already have 2 jobs queued or running"):
        _sample(data_dir, "compare", "a green triangle", visitors, None)
    assert len(list_jobs(data_dir)) == 7


def test_anonymous_visitors_have_a_cap_of_their_own_apart_from_the_owners_command_line_jobs(data_dir):
    """In an open studio (DFD_STUDIO_OPEN=1) the jobs of visitors who did not sign in are recorded as ANONYMOUS:
    the owner's command-line jobs (no submitter) take none of their cap, and they still may act on no job."""
    from engine.jobs import get, submit
    from studio import active_jobs_of, jobs
    from studio.admission import ANONYMOUS, submitter_of
    from studio.identity import LOCAL_OWNER, Identity

    visitors = Identity(True, "olga", max_active_jobs=2)
    assert submitter_of(visitors, None) == ANONYMOUS and submitter_of(visitors, "bob") == "bob"
    assert submitter_of(LOCAL_OWNER, None) is None  # a local studio's user is the owner
    for _ in range(2):
        submit(data_dir, "distill", {"steps": 5})  # the owner's command line
    first = _sample(data_dir, "compare", "a red circle", visitors, None)  # not refused: those two are the owner's
    assert get(data_dir, first.job_ids[0]).submitted_by == ANONYMOUS
    assert active_jobs_of(data_dir, ANONYMOUS) == 1 and active_jobs_of(data_dir, None) == 2
    _sample(data_dir, "diversity", "a cat", visitors, None)
    with pytest.raises(ValueError, match=r"^visitors who have not signed in already have 2 jobs queued or running"):
        _sample(data_dir, "compare", "a green triangle", visitors, None)
    assert "this studio has no login" in jobs.cancel(data_dir, first.job_ids[0], visitors, None)
    assert _sample(data_dir, "compare", "a green triangle", visitors, "bob") is not None  # bob's cap is his own


def test_the_compare_and_diversity_buttons_queue_as_the_signed_in_visitor_and_say_which_limit_refused(data_dir):
    import gradio as gr

    from studio import compare, diversity
    from studio.files import public_folder
    from studio.identity import Identity

    visitors, public = Identity(True, "olga", max_active_jobs=1), _public(data_dir)
    with gr.Blocks() as demo:
        compare.build(data_dir, public_folder(data_dir), "shapes-tiny", public, visitors)
        diversity.build(data_dir, public_folder(data_dir), "shapes-tiny", public, visitors)
    clicks = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_click_as"]
    assert len(clicks) == 2
    compare_click, diversity_click = clicks
    bob = gr.Request(username="bob")
    *_, error, _ = compare_click(bob, "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, True, None, 0)
    [job] = list_jobs(data_dir)
    assert error == "" and job.kind == "sample" and job.submitted_by == "bob"
    *_, error, _ = diversity_click(bob, "shapes-tiny", "a cat", 2, ["teacher"], True, "", None)
    assert error == (
        "**Cannot measure:** you already have 1 job queued or running, the most this studio allows a visitor at "
        "once (1); wait for one to finish or cancel one (the owner can change it with DFD_STUDIO_MAX_ACTIVE_JOBS)"
    )
    assert len(list_jobs(data_dir)) == 1


def test_one_requests_sample_jobs_fit_the_queue_together_or_not_at_all(data_dir):
    from engine.jobs import submit
    from studio.limits import PublicLimits

    limits = PublicLimits(max_queued=3)
    submit(data_dir, "distill", {"steps": 5}, submitted_by="ann")
    limits.check_queue(data_dir, 2)
    with pytest.raises(ValueError) as refused:
        limits.check_queue(data_dir, 3)
    assert str(refused.value) == (
        "this request queues 3 jobs and 1 already wait in this public studio's queue, which holds at most 3; ask "
        "for fewer at once, or again when some have started (the owner can change it with DFD_STUDIO_MAX_QUEUED)"
    )


def test_resume_is_held_to_the_queue_cap_the_visitors_cap_and_the_disk(data_dir, monkeypatch):
    import gradio as gr

    from engine.jobs import get, submit
    from studio import jobs
    from studio.files import public_folder
    from studio.identity import Identity

    visitors, public = Identity(True, "olga", max_active_jobs=1), _public(data_dir, DFD_STUDIO_MAX_QUEUED="2")
    bobs = submit(data_dir, "distill", {"steps": 5}, submitted_by="bob").id
    jobs.cancel(data_dir, bobs, visitors, "bob")
    anns = [submit(data_dir, "distill", {"steps": 5}, submitted_by=f"ann{i}").id for i in range(2)]
    with gr.Blocks() as demo:  # through the Jobs tab's Resume button, as the signed-in visitor
        jobs.build(data_dir, public_folder(data_dir), visitors, public)
    [on_resume] = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_resume"]
    message, *_ = on_resume(bobs, gr.Request(username="bob"))
    assert message == (
        f"Cannot resume job {bobs}: 2 jobs are already waiting in this public studio's queue, the most it holds; "
        "launch again when one has started (the owner can change it with DFD_STUDIO_MAX_QUEUED)."
    )
    jobs.cancel(data_dir, anns[0], visitors, "ann0")
    other = submit(data_dir, "distill", {"steps": 5}, submitted_by="bob").id
    assert jobs.resume(data_dir, bobs, visitors, "bob", public).startswith(
        f"Cannot resume job {bobs}: you already have 1 job queued or running, the most this studio allows"
    )
    jobs.cancel(data_dir, other, visitors, "bob")
    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", str(10**12))  # more than any disk has
    message = jobs.resume(data_dir, bobs, visitors, "bob", public)
    assert message.startswith(f"Cannot resume job {bobs}: this machine's disk has ") and message.endswith(
        "so the job cannot start now; try again later (the owner can free space, or change DFD_STUDIO_MIN_FREE_MB)."
    )
    assert get(data_dir, bobs).state == "cancelled"  # every refusal left it as it was
    monkeypatch.delenv("DFD_STUDIO_MIN_FREE_MB")
    queued_again = f"Job {bobs} is queued again; it continues from its newest checkpoint."
    assert on_resume(bobs, gr.Request(username="bob"))[0] == queued_again


def test_a_public_compare_samples_no_longer_clips_than_a_run_may_train_on(data_dir):
    from studio import compare
    from studio.files import public_folder

    request = (data_dir, public_folder(data_dir), "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, None, 161)
    with pytest.raises(ValueError) as refused:
        compare.queue(*request, access=_public(data_dir))
    assert str(refused.value) == (
        "Video frames 161 is more than this public studio allows: at most 81 (the owner can change it with "
        "DFD_STUDIO_MAX_FRAMES)"
    )
    assert list_jobs(data_dir) == []
    assert compare.queue(*request, access=_public(data_dir, DFD_STUDIO_MAX_FRAMES="161"))[1] is not None
    assert compare.queue(*request[:-1], 0, access=_public(data_dir))[1] is not None  # the model's own length


def test_every_limit_the_code_reads_has_its_default_and_variable_in_the_security_table():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readers = [
        "studio/limits.py",
        "studio/identity.py",
        "studio/janitor.py",
        "studio/__init__.py",
        "engine/distill/uploads.py",
        "engine/jobs/disk.py",
        "app.py",
    ]
    code = "\n".join((root / path).read_text() for path in readers)
    limits = set(re.findall(r"\bDFD_STUDIO_(?:MAX|MIN|KEEP|QUEUE|TRACKERS)\w*", code))
    assert {"DFD_STUDIO_MAX_ACTIVE_JOBS", "DFD_STUDIO_MAX_ZIP_ENTRIES", "DFD_STUDIO_QUEUE_SIZE"} <= limits
    doc = (root / "docs/security.md").read_text()
    table = doc.split("## Limits and the owner's overrides")[1].split("\n## ")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`(DFD_STUDIO_\w+)`", cells[2] if len(cells) == 4 else ""):
            rows[name] = cells
    assert sorted(limits - set(rows)) == []  # each has a row
    assert all(cells[0] and cells[1] and cells[3] in ("public", "every") for cells in rows.values())


def test_the_owner_moves_a_zips_entry_count_and_entry_ratio_and_the_refusal_names_the_variable(tmp_path):
    from engine.distill.uploads import Limits, UploadError, extract_dataset

    upload = tmp_path / "four.zip"
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("a.mp4", "a.txt", "b.mp4", "b.txt"):
            archive.writestr(name, os.urandom(64))
    limits = Limits.from_env({"DFD_STUDIO_MAX_ZIP_ENTRIES": "3", "DFD_STUDIO_MAX_ENTRY_RATIO": "50"})
    assert (limits.max_entries, limits.max_ratio) == (3, 50.0)
    with pytest.raises(UploadError) as refused:
        extract_dataset(upload, tmp_path / "uploads", limits)
    assert str(refused.value) == (
        "the zip has 4 entries; at most 3 are accepted (the owner can change it with DFD_STUDIO_MAX_ZIP_ENTRIES)"
    )
    assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []  # nothing of it kept
