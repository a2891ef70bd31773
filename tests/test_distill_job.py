"""The real `distill` job kind through the worker, for a text-to-video student and a causal one (task ar)
alike: a queued job runs to done and its student publishes, a running job cancels with its last checkpoint
intact and resumes from it, and a job killed mid-run resumes from its newest checkpoint to exactly the
weights of an uninterrupted job of the same seed."""

from __future__ import annotations

import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

import engine.jobs as api
from conftest import run_engine, wait_for
from jobs_helpers import data_dir, run_worker_until_idle, start_worker, state_of  # noqa: F401  (fixtures)

TASKS = ["t2v", "ar"]


def _config(base, task, **kw) -> dict:
    """A small run of the mini teacher; for ar its 5 latent frames are chunks [0], [1, 2, 3], [4]."""
    config = {
        "method": "dmd2",
        "base": str(base),
        "task": task,
        "steps": 40,
        "batch_size": 2,
        "student_update_freq": 2,
        "shapes_pool_clips": 64,
        "lora_rank": 4,
        "lr_student": 1e-3,
        "lr_fake": 1e-3,
        "checkpoint_every": 4,
        "seed": 5,
    }
    return {**config, **kw}


@pytest.mark.parametrize("task", TASKS)
def test_a_queued_distill_job_runs_to_done_and_publishes_its_student(data_dir, mini_teacher_dir, tmp_path, task):
    job = api.submit(data_dir, "distill", _config(mini_teacher_dir, task, steps=4, checkpoint_every=2))
    assert job.state == "queued" and job.config["task"] == task
    worker = run_worker_until_idle(data_dir, timeout=240)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    done = api.get(data_dir, job.id)
    assert (done.state, done.step, done.total, done.error) == ("succeeded", 4, 4, None)
    assert [c.step for c in api.checkpoints(data_dir, job.id)] == [2, 4]
    assert [p.step for p in api.metrics(data_dir, job.id, ["loss_student"])] == [2, 4]
    videos = api.artifacts(data_dir, job.id, "video")
    assert len(videos) == 8 and all(v.path.is_file() for v in videos)  # two prompts x four seeds
    lora = data_dir / "jobs" / job.id / "lora"
    info = json.loads((lora / "lora_config.json").read_text())
    assert info.get("causal", False) == (task == "ar")
    if task == "ar":
        assert (info["chunk_frames"], info["trained_latent_frames"], info["window_frames"]) == (3, 5, 2)
        assert all("causal" in v.label for v in videos)

    archive = tmp_path / "student.zip"
    published = run_engine("publish", "--lora", str(lora), "--repo", "me/job-student", "--export", str(archive))
    assert published.returncode == 0, published.stderr[-2000:]
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        card = z.read("job-student/README.md").decode()
        shipped_info = json.loads(z.read("job-student/lora_config.json"))
        weights = z.read("job-student/pytorch_lora_weights.safetensors")
    assert weights == (lora / "pytorch_lora_weights.safetensors").read_bytes()
    assert shipped_info == {**info, "base": Path(info["base"]).name}  # a local base by its name, not its path
    assert sorted(n.split("/")[-1] for n in names if n.endswith(".mp4")) == sorted(v.path.name for v in videos)
    prompts = json.loads((data_dir / "jobs" / job.id / "samples" / "previews.json").read_text())["prompts"]
    widget = yaml.safe_load(card.split("---")[1])["widget"]
    assert [w["text"] for w in widget] == [prompts[0]] * 4 + [prompts[1]] * 4  # the run's recorded prompts
    assert "| training steps | 4 |" in card and "| student updates | 2 (" in card
    if task == "ar":  # the card marks the job's causal student and runs it with DFD Studio's causal sampler
        assert "causal (autoregressive) text-to-video student" in card and "--num-frames 65" in card
        assert "does **not** run it causally" in card and "Its cache keeps the newest 2 latent frames" in card
        assert "then 3 latent frames (12 video frames) each; it was trained on 5 latent frames" in card
    else:
        assert "causal" not in card


@pytest.mark.parametrize("task", TASKS)
def test_a_running_distill_job_cancels_with_its_last_checkpoint_intact_and_resumes_from_it(
    data_dir,
    start_worker,
    mini_teacher_dir,
    task,
):
    job = api.submit(data_dir, "distill", _config(mini_teacher_dir, task, steps=400, checkpoint_every=2))
    start_worker()
    wait_for(lambda: api.checkpoints(data_dir, job.id), 120, "a first checkpoint")
    api.cancel(data_dir, job.id)
    asked_at = time.monotonic()
    wait_for(lambda: state_of(data_dir, job.id) == "cancelled", 10, "the job to stop")
    assert time.monotonic() - asked_at < 10
    stopped = api.get(data_dir, job.id)
    assert stopped.error is None and stopped.step < 400
    last = api.checkpoints(data_dir, job.id)[-1]
    assert (last.path / "state.pt").is_file()
    assert not [p for p in (data_dir / "jobs" / job.id / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert "cancelled at step" in api.log_tail(data_dir, job.id, 50)

    assert api.resume(data_dir, job.id).state == "queued"
    wait_for(
        lambda: f"resumed from checkpoint step {last.step}" in api.log_tail(data_dir, job.id, 200),
        120,
        "the job to resume from its checkpoint",
    )
    wait_for(lambda: api.get(data_dir, job.id).step > last.step, 60, "a step after the checkpoint")
    api.cancel(data_dir, job.id)
    wait_for(lambda: state_of(data_dir, job.id) == "cancelled", 10, "the resumed job to stop")
    steps = [p.step for p in api.metrics(data_dir, job.id, ["loss_student"])]
    assert steps == list(range(2, steps[-1] + 1, 2))  # every other step, none repeated by the resume


# t2v only: a causal run's bit-identical resume is test_trainer.py's and test_causal_distill.py's, and its
# resume through a job the cancel test's above (the job system does not depend on the task; CI time does).
@pytest.mark.parametrize("task", ["t2v"])
def test_killed_distill_job_resumes_to_the_weights_of_an_uninterrupted_one(
    data_dir,
    start_worker,
    mini_teacher_dir,
    task,
):
    config = _config(mini_teacher_dir, task, steps=24)
    victim = api.submit(data_dir, "distill", config)
    start_worker()
    wait_for(lambda: any(c.step >= 8 for c in api.checkpoints(data_dir, victim.id)), 120, "a checkpoint at step 8")
    job = api.get(data_dir, victim.id)
    assert job.state == "running" and job.step < 24
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: state_of(data_dir, victim.id) == "interrupted", 15, "the job to become interrupted")

    reference = api.submit(data_dir, "distill", config)
    api.resume(data_dir, victim.id)
    wait_for(
        lambda: {state_of(data_dir, victim.id), state_of(data_dir, reference.id)} == {"succeeded"},
        240,
        "both jobs to succeed",
    )

    a = load_file(data_dir / "jobs" / victim.id / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(data_dir / "jobs" / reference.id / "lora" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    info = json.loads((data_dir / "jobs" / victim.id / "lora" / "lora_config.json").read_text())
    assert info.get("causal", False) == (task == "ar")
    kinds = {art.kind for art in api.artifacts(data_dir, victim.id)}
    assert {"lora", "video"} <= kinds
    steps = [p.step for p in api.metrics(data_dir, victim.id, ["loss_student"])]
    assert steps == list(range(2, 25, 2))  # every other step is a student step; none repeated by the resume
    assert "resumed from checkpoint step" in api.log_tail(data_dir, victim.id, 400)


def test_a_queued_dfd_job_whose_student_was_deleted_since_fails_saying_so(data_dir, tmp_path):
    import shutil
    from pathlib import Path

    # The row was validated when it was queued; the job process checks again only the files, which may change.
    student = shutil.copytree(Path(__file__).parents[1] / "engine" / "assets" / "students" / "dmd2", tmp_path / "dmd2")
    job = api.submit(data_dir, "distill", {"method": "dfd", "init": str(student), "steps": 5})
    shutil.rmtree(student)
    worker = run_worker_until_idle(data_dir, timeout=120)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    failed = api.get(data_dir, job.id)
    assert (failed.state, failed.error) == (
        "failed",
        f"init: no pytorch_lora_weights.safetensors in {student}; give a student LoRA folder",
    )
