"""An HF Job as a row of the job table (engine/jobs/hf_tracker.py), against the stand-in at huggingface_hub's
boundary: the job's exact command runs in a local subprocess with the Storage Bucket a local folder that is also
the studio's data dir, as on a Space. Real SQLite, real training run, real files on the "bucket"."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

import engine
import storage
from conftest import wait_for
from engine.config.build import build_distill_config
from engine.jobs import hf_tracker
from hf_jobs_stand_in import LocalHfJobs
from storage.models import JobRow


@pytest.fixture
def space(tmp_path):
    """A Space's view: the bucket mounted at tmp/bucket (the job sees it at /data), the data dir on it."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    env = {
        "DFD_STUDIO_PERSISTENT_DIR": str(bucket),
        "SPACE_ID": "alice/dfd-studio",
        "DFD_STUDIO_BUCKET": "alice/dfd-data",
    }
    hf_tracker._tokens.clear()
    api = LocalHfJobs({"/data": bucket})
    yield bucket, bucket / "studio_data", env, api
    for proc in api.procs.values():  # a job a test left running stops with it
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    hf_tracker._tokens.clear()
    storage.close_all()


def config(**values):
    settings = {"steps": 4, "student_update_freq": 2, "batch_size": 2, "lora_rank": 4, "shapes_pool_clips": 16}
    return build_distill_config(config_file=None, values={**settings, "checkpoint_every": 2, **values})


def start(data_dir, api, env, cfg=None, token="hf_alice"):
    return hf_tracker.start(
        data_dir,
        api,
        cfg or config(),
        flavor="l40sx1",
        timeout_s=3600,
        namespace="alice",
        token=token,
        bucket="alice/dfd-data",
        submitted_by="alice",
        environ=env,
    )


def refresh_until(data_dir, api, env, job_id, done, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hf_tracker.refresh_all(data_dir, api, env)
        job = engine.jobs.get(data_dir, job_id)
        if done(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"{job_id} still {job.state} at step {job.step}:\n{engine.jobs.log_tail(data_dir, job_id)}")


def test_an_hf_job_is_a_job_row_whose_student_compare_and_publish_read_as_a_local_ones(space):
    bucket, data_dir, env, api = space
    job, made = start(data_dir, api, env)
    assert (job.target, job.state, job.remote["id"], job.submitted_by) == ("hf-jobs", "running", "job0", "alice")
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    out = f"/data/studio_data/jobs/{job.id}"
    assert run["command"][-4:] == ["--out", out, "--lora-dir", f"{out}/lora"]  # the job's own folder, on the bucket
    assert f"{data_dir}" not in " ".join(run["command"])  # every path as the job sees it
    assert run["token"] == "hf_alice" and storage.jobs.count_queued(storage.open_database(data_dir)) == 0

    done = refresh_until(data_dir, api, env, job.id, lambda j: j.state not in ("queued", "running"))
    assert done.state == "succeeded", done.error
    assert done.step == 4 and done.total == 4 and "loss_fake" in done.loss_terms
    assert sorted({p.step for p in engine.jobs.metrics(data_dir, job.id)}) == [1, 2, 3, 4]  # from metrics.jsonl
    assert [c.step for c in engine.jobs.checkpoints(data_dir, job.id)][-1] == 4
    assert all(c.path.is_relative_to(bucket) for c in engine.jobs.checkpoints(data_dir, job.id))
    [lora] = engine.jobs.artifacts(data_dir, job.id, "lora")
    assert lora.path == data_dir / "jobs" / job.id / "lora" / "pytorch_lora_weights.safetensors"
    videos = engine.jobs.artifacts(data_dir, job.id, "video")
    assert videos and all(v.path.is_file() and v.label.startswith("step 4: ") for v in videos)
    assert "pytorch_lora_weights.safetensors" in engine.jobs.log_tail(data_dir, job.id)  # fetch_job_logs' lines
    assert [s.name for s in engine.job_students(data_dir)] == [job.id]  # Compare, Diversity and Publish list it
    names = [name for name, _ in api.calls]
    assert {"inspect_job", "fetch_job_logs"} <= set(names) and "cancel_job" not in names


def test_a_restart_reattaches_cancel_goes_to_the_hub_and_resume_continues_from_the_bucket(space):
    bucket, data_dir, env, api = space
    job, _ = start(data_dir, api, env, config(steps=100000, checkpoint_every=2))
    hf_tracker._tokens.clear()  # the Space restarted: no sign-in token in memory, no HF_TOKEN set
    moving = refresh_until(data_dir, api, env, job.id, lambda j: j.step >= 3)
    assert moving.state == "running" and len(engine.jobs.checkpoints(data_dir, job.id)) >= 1  # from the bucket alone
    calls = len(api.calls)
    engine.jobs.cancel(data_dir, job.id)
    hf_tracker.refresh_all(data_dir, api, env)
    assert engine.jobs.get(data_dir, job.id).state == "running"  # nobody who may ask the Hub yet
    assert [name for name, _ in api.calls[calls:]] == []

    hf_tracker.remember_token("alice", "hf_alice_again")  # alice signs in again
    hf_tracker.refresh_all(data_dir, api, env)
    cancelled = engine.jobs.get(data_dir, job.id)
    assert cancelled.state == "cancelled" and api.procs["job0"].poll() is not None
    assert ("cancel_job", {"job_id": "job0", "namespace": "alice", "token": "hf_alice_again"}) in api.calls
    head = engine.jobs.log_tail(data_dir, job.id, 10_000).splitlines()[0]
    assert head == "--- HF Job job0 (l40sx1, alice): GPU 87%, 30.1 of 48.0 GB"  # fetch_job_metrics' sample

    resumed_from = engine.jobs.checkpoints(data_dir, job.id)[-1].step
    hf_tracker._tokens.clear()
    engine.jobs.resume(data_dir, job.id)
    hf_tracker.refresh_all(data_dir, api, env)
    hf_tracker.refresh_all(data_dir, api, env)
    assert engine.jobs.get(data_dir, job.id).state == "queued"  # waits for a token of alice's
    assert engine.jobs.log_tail(data_dir, job.id).count("once alice opens the studio signed in") == 1
    hf_tracker.remember_token("alice", "hf_alice_again")
    assert engine.jobs.get(data_dir, job.id).target == "hf-jobs"
    assert storage.jobs.claim_next(storage.open_database(data_dir)) is None  # never the local worker's
    again = refresh_until(data_dir, api, env, job.id, lambda j: (j.remote or {}).get("id") == "job1")
    assert again.state == "running" and again.remote["earlier"] == ["job0"]
    run = [kwargs for name, kwargs in api.calls if name == "run_job"][-1]
    assert run["command"][-1] == "--resume" and run["token"] == "hf_alice_again"
    assert max(p.step for p in engine.jobs.metrics(data_dir, job.id)) == resumed_from  # the rest is re-run
    later = refresh_until(data_dir, api, env, job.id, lambda j: j.step > resumed_from)
    assert "resumed from checkpoint step" in engine.jobs.log_tail(data_dir, job.id, 400)
    engine.jobs.cancel(data_dir, later.id)
    assert refresh_until(data_dir, api, env, job.id, lambda j: j.state != "running").state == "cancelled"


def test_a_start_refused_by_a_check_stores_nothing_and_one_the_hub_refuses_is_failed(space):
    bucket, data_dir, env, api = space
    with pytest.raises(ValueError, match="over this studio's cap"):
        start(data_dir, api, {**env, "DFD_STUDIO_HF_JOBS_MAX_USD": "1"})
    with pytest.raises(ValueError, match="data /elsewhere/clips is on this machine only"):
        start(data_dir, api, env, replace(config(), data="/elsewhere/clips"), token="t")
    assert engine.jobs.list_jobs(data_dir) == []

    def refuse(**kwargs):
        raise RuntimeError("402 Payment Required: add a payment method to run Jobs")

    api.run_job = refuse
    with pytest.raises(ValueError, match="HF Jobs did not start it: 402 Payment Required"):
        start(data_dir, api, env)
    [failed] = engine.jobs.list_jobs(data_dir)
    assert failed.state == "failed" and "402 Payment Required" in failed.error


def test_after_a_restart_with_no_token_the_bucket_alone_settles_a_job(space):
    bucket, data_dir, env, api = space
    done, _ = start(data_dir, api, env, config(steps=2))
    api.procs["job0"].wait(timeout=240)  # it finished while the Space was down
    stuck, _ = start(data_dir, api, env, config(steps=100000))
    hf_tracker._tokens.clear()
    db = storage.open_database(data_dir)
    with db.write() as session:  # started two time limits ago: past its timeout with no student
        session.get(JobRow, stuck.id).started_at = time.time() - 2 * 3600 - hf_tracker.OVERDUE_S
    calls = len(api.calls)
    hf_tracker.refresh_all(data_dir, api, env)
    finished = engine.jobs.get(data_dir, done.id)
    assert finished.state == "succeeded" and engine.jobs.artifacts(data_dir, done.id, "lora")
    assert [s.name for s in engine.job_students(data_dir)] == [done.id]
    gone = engine.jobs.get(data_dir, stuck.id)
    assert gone.state == "interrupted" and "its time limit passed without a student in the bucket" in gone.error
    assert api.calls[calls:] == []  # nothing asked of the Hub without a token


def test_the_command_line_on_a_data_dir_on_the_bucket_stores_a_tracked_row(space, monkeypatch, capsys):
    import huggingface_hub

    from engine.cli.jobs import main

    bucket, data_dir, env, api = space
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: api)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_user")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options = ["--steps", "100000", "--batch-size", "2", "--lora-rank", "4", "--shapes-pool-clips", "16"]
    where = ["--on", "hf-jobs", "--flavor", "l40sx1", "--bucket", "alice/dfd-data", "--timeout", "1h"]
    assert main(["jobs", "--data-dir", str(data_dir), "submit", *options, *where]) == 0
    [job] = engine.jobs.list_jobs(data_dir)
    said = capsys.readouterr().out
    assert said.startswith("started HF Job job0 on l40sx1 ($1.80/h, at most $1.80 in 1 h) as alice: job ")
    assert job.id in said and (job.target, job.state, job.remote["id"]) == ("hf-jobs", "running", "job0")
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    assert run["token"] == "hf_user" and f"/data/studio_data/jobs/{job.id}" in run["command"]
    engine.jobs.cancel(data_dir, job.id)
    assert refresh_until(data_dir, api, env, job.id, lambda j: j.state != "running").state == "cancelled"


def test_the_apps_tracker_thread_follows_a_job_to_its_end(space):
    bucket, data_dir, env, api = space
    job, _ = start(data_dir, api, env, config(steps=2))
    tracker = hf_tracker.follow(data_dir, api, every_s=0.2)  # as app.py starts it
    try:
        wait_for(lambda: engine.jobs.get(data_dir, job.id).state != "running", 240, "the tracker to settle the job")
    finally:
        tracker.stopping.set()
        tracker.join(timeout=30)
    assert engine.jobs.get(data_dir, job.id).state == "succeeded" and not tracker.is_alive()


def test_a_base_on_the_spaces_model_volume_is_mounted_read_only_at_the_same_path(space, mini_teacher_dir):
    bucket, data_dir, env, api = space
    api.folders["/models/tiny"], api.repos["/models/tiny"] = mini_teacher_dir, "alice/tiny-teacher"
    job, _ = start(data_dir, api, env, replace(config(steps=2), base="/models/tiny"))
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    bucket_volume, model = (v.to_dict() for v in run["volumes"])
    assert model == {"type": "model", "source": "alice/tiny-teacher", "mountPath": "/models/tiny", "readOnly": True}
    assert run["command"][run["command"].index("--base") + 1] == "/models/tiny"  # nothing to download
    assert ("get_space_runtime", {"repo_id": "alice/dfd-studio", "token": "hf_alice"}) in api.calls
    done = refresh_until(data_dir, api, env, job.id, lambda j: j.state != "running")
    assert done.state == "succeeded", done.error
    assert done.remote["volumes"][0]["source"] == "alice/tiny-teacher"  # a resume mounts it again
