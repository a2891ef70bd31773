"""The real `distill` job kind through the worker: a DMD2 job killed mid-run resumes from its newest
checkpoint to exactly the weights of an uninterrupted job of the same seed."""

from __future__ import annotations

import os
import signal

from safetensors.torch import load_file

import engine.jobs as api
from test_jobs import data_dir, start_worker, state_of, wait_for  # noqa: F401  (fixtures)


def test_killed_distill_job_resumes_to_the_weights_of_an_uninterrupted_one(data_dir, start_worker, mini_teacher_dir):  # noqa: F811
    config = {"method": "dmd2", "base": str(mini_teacher_dir), "steps": 40, "batch_size": 2, "student_update_freq": 2, "shapes_pool_clips": 64,
              "lora_rank": 4, "lr_student": 1e-3, "lr_fake": 1e-3, "checkpoint_every": 4, "seed": 5}
    victim = api.submit(data_dir, "distill", config)
    start_worker()
    wait_for(lambda: any(c.step >= 8 for c in api.checkpoints(data_dir, victim.id)), 120, "a checkpoint at step 8")
    job = api.get(data_dir, victim.id)
    assert job.state == "running" and job.step < 40
    os.kill(job.pid, signal.SIGKILL)
    wait_for(lambda: state_of(data_dir, victim.id) == "interrupted", 15, "the job to become interrupted")

    reference = api.submit(data_dir, "distill", config)
    api.resume(data_dir, victim.id)
    wait_for(lambda: {state_of(data_dir, victim.id), state_of(data_dir, reference.id)} == {"succeeded"}, 240,
             "both jobs to succeed")

    a = load_file(data_dir / "jobs" / victim.id / "lora" / "pytorch_lora_weights.safetensors")
    b = load_file(data_dir / "jobs" / reference.id / "lora" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    kinds = {art.kind for art in api.artifacts(data_dir, victim.id)}
    assert {"lora", "video"} <= kinds
    steps = [p.step for p in api.metrics(data_dir, victim.id, ["loss_student"])]
    assert steps == list(range(2, 41, 2))  # every other step is a student step; none repeated by the resume
    assert "resumed from checkpoint step" in api.log_tail(data_dir, victim.id, 400)
