"""The Distill tab's run target through the tab's own callbacks (studio/distill_target.py wired by
studio/distill.py): a real SQLite data dir on a "bucket" folder, a real gradio Request carrying a Sign in with
Hugging Face session, and the HfApi stand-in at the network's boundary running the job's exact command."""

from __future__ import annotations

import time

import gradio as gr
import pytest
from starlette.requests import Request

import engine
import storage
from form_helpers import form
from hf_jobs_stand_in import LocalHfJobs
from studio import distill, distill_target


def signed_in(scope="openid profile contribute-repos jobs", name="alice", expires_in=3600):
    session = {
        "oauth_info": {
            "access_token": f"hf_oauth_{name}",
            "scope": scope,
            "expires_at": time.time() + expires_in,
            "userinfo": {"preferred_username": name},
        }
    }
    return gr.Request(request=Request({"type": "http", "session": session, "headers": []}))


NOBODY = gr.Request(request=Request({"type": "http", "session": {}, "headers": []}))


@pytest.fixture
def tab(tmp_path, monkeypatch):
    """The Distill tab of a studio whose data dir is on the Space's bucket (mounted at tmp/bucket)."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    api = LocalHfJobs({"/data": bucket})
    for name, value in {
        "DFD_STUDIO_PERSISTENT_DIR": str(bucket),
        "SPACE_ID": "alice/dfd-studio",
        "DFD_STUDIO_BUCKET": "alice/dfd-data",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DFD_STUDIO_HF_JOBS_MAX_USD", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(distill_target, "hub_api", lambda: api)
    distill_target._hardware.clear()
    engine.hf_tracker._tokens.clear()
    data_dir = bucket / "studio_data"
    with gr.Blocks():
        ui = distill.build(data_dir)
    yield data_dir, ui, api
    for proc in api.procs.values():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    engine.hf_tracker._tokens.clear()
    storage.close_all()


def launch(ui, target=("hf-jobs", "l40sx1", 0.5), request=None, **overrides):
    values = list(form(**{"steps": 100000, **overrides}).values())
    return ui["launch_fn"](None, None, *values, *target, submitted_by="alice", request=request)


def test_the_target_lists_priced_gpus_once_signed_in_with_the_jobs_scope(tab):
    data_dir, ui, api = tab
    box, flavors, said = distill_target.on_target("hf-jobs", None, 2, NOBODY)
    assert box["visible"] and said.startswith("**Cannot use HF Jobs:** HF Jobs run under your own Hugging Face")
    _, _, said = distill_target.on_target("hf-jobs", None, 2, signed_in(scope="openid profile contribute-repos"))
    assert "needs the `jobs` scope: add it under hf_oauth_scopes" in said
    box, flavors, said = distill_target.on_target("hf-jobs", None, 2, signed_in())
    assert flavors["choices"] == [
        ("l40sx1: Nvidia L40S - 1x, $1.80/h", "l40sx1"),
        ("h200: Nvidia H200, $5.00/h", "h200"),
    ]
    assert flavors["value"] == "l40sx1"
    assert said == "l40sx1: $1.80/h, at most $3.60 in 2 h, billed to your account."
    assert ("list_jobs_hardware", {"token": "hf_oauth_alice"}) in api.calls  # the visitor's token, not the Space's
    assert engine.hf_tracker.token_for("alice") == "hf_oauth_alice"
    hidden, _, said = distill_target.on_target("local", "l40sx1", 2, NOBODY)
    assert hidden["visible"] is False and said == ""


def test_refusals_say_what_to_do_and_store_nothing(tab, monkeypatch):
    data_dir, ui, api = tab
    said, job_id = launch(ui, request=NOBODY)
    assert job_id is None and said.startswith("**Cannot launch on HF Jobs:** HF Jobs run under your own")
    said, _ = launch(ui, request=signed_in(scope="openid profile contribute-repos"))
    assert "needs the `jobs` scope" in said
    said, _ = launch(ui, request=signed_in(expires_in=-10))  # an expired sign-in is nobody's
    assert "sign in with Hugging Face" in said
    said, _ = launch(ui, ("hf-jobs", "a100-huge", 1), signed_in())
    assert "no flavor 'a100-huge'; GPU flavors: l40sx1 ($1.80/h), h200 ($5.00/h)" in said
    monkeypatch.setenv("DFD_STUDIO_HF_JOBS_MAX_USD", "5")
    said, _ = launch(ui, ("hf-jobs", "h200", 2), signed_in())
    assert "could cost $10.00, over this studio's cap of $5.00 (DFD_STUDIO_HF_JOBS_MAX_USD)" in said
    distill_target.on_target("hf-jobs", "h200", 2, signed_in())  # the tab shows the cap beside the price
    assert distill_target.cost_line("h200", 2).endswith(
        "at most $10.00 in 2 h, billed to your account; this studio's cap per run: $5.00."
    )
    said, _ = launch(ui, request=signed_in(), steps=0)  # the form's own checks apply as for this machine
    assert "steps must be between 1 and" in said
    monkeypatch.delenv("DFD_STUDIO_BUCKET")
    said, _ = launch(ui, request=signed_in())
    assert "attach one at /data and set DFD_STUDIO_BUCKET" in said
    assert not (data_dir / "studio.db").exists() or engine.jobs.list_jobs(data_dir) == []
    assert "run_job" not in [name for name, _ in api.calls]


def test_launch_on_hf_jobs_stores_a_tracked_row_and_this_machine_queues_as_before(tab):
    data_dir, ui, api = tab
    said, job_id = launch(ui, request=signed_in())
    assert said.startswith(f"**Started** job `{job_id}` as HF Job job0 on l40sx1 under alice: $1.80/h, at most $0.90")
    job = engine.jobs.get(data_dir, job_id)
    assert (job.target, job.state, job.submitted_by, job.remote["timeout"]) == ("hf-jobs", "running", "alice", 1800)
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    assert run["token"] == "hf_oauth_alice" and run["namespace"] == "alice"
    assert f"/data/studio_data/jobs/{job_id}" in run["command"]
    engine.jobs.cancel(data_dir, job_id)  # the Jobs tab's Cancel
    engine.hf_tracker.refresh_all(data_dir, api)
    assert engine.jobs.get(data_dir, job_id).state == "cancelled" and api.procs["job0"].poll() is not None

    said, local_id = launch(ui, ("local", "l40sx1", 0.5), signed_in())
    assert said.startswith(f"**Queued** job `{local_id}`")
    assert engine.jobs.get(data_dir, local_id).target == "local"
    assert [name for name, _ in api.calls].count("run_job") == 1


def test_on_zerogpu_this_machine_refuses_and_hf_jobs_trains(tab, tmp_path, monkeypatch):
    from studio import zerogpu

    data_dir, ui, api = tab
    (tmp_path / "spaces.py").write_text("def GPU(fn=None, **kwargs):\n    return fn\n")  # a ZeroGPU Space's module
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.on_zerogpu()
    said, job_id = launch(ui, ("local", None, None), signed_in())
    assert job_id is None and "Pick Run on: HF Jobs" in said
    said, job_id = launch(ui, request=signed_in())
    assert said.startswith(f"**Started** job `{job_id}` as HF Job job0")


def test_dfd_on_hf_jobs_starts_from_a_dmd2_student_hf_jobs_finished(tab):
    data_dir, ui, api = tab
    small = {"steps": 2, "student_update_freq": 2, "batch_size": 2, "lora_rank": 4, "shapes_pool_clips": 16}
    _, dmd2 = launch(ui, request=signed_in(), **small)
    wait_until = time.monotonic() + 240
    while engine.jobs.get(data_dir, dmd2).state == "running" and time.monotonic() < wait_until:
        engine.hf_tracker.refresh_all(data_dir, api)
        time.sleep(0.5)
    assert engine.jobs.get(data_dir, dmd2).state == "succeeded", engine.jobs.log_tail(data_dir, dmd2)
    assert [key for _, key in distill.init_choices(data_dir, "shapes-tiny") if key == dmd2]  # offered to DFD

    said, dfd = launch(ui, request=signed_in(), method="dfd", init_student=dmd2, **small)
    assert said.startswith(f"**Started** job `{dfd}` as HF Job job1"), said
    run = [kwargs for name, kwargs in api.calls if name == "run_job"][-1]
    init = run["command"][run["command"].index("--init") + 1]
    assert init == f"/data/studio_data/jobs/{dmd2}/lora"  # the DMD2 student on the bucket, as the job sees it
    assert engine.jobs.get(data_dir, dfd).parent_id == dmd2
    api.procs["job1"].wait(timeout=240)
    engine.hf_tracker.refresh_all(data_dir, api)
    assert engine.jobs.get(data_dir, dfd).state == "succeeded", engine.jobs.log_tail(data_dir, dfd)
