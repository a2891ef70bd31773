"""Stopping jobs with real parts: a real SQLite file, real worker and job processes, real signals. A killed job
is interrupted and resumes to the same weights, Cancel stops a running job (escalating to SIGTERM, then
SIGKILL) or a queued one at once, a stop inside a database call takes effect after it, a stopped or dead
worker's job is left interrupted and resumable, and two workers run one accelerator job at a time. The job
kinds are tests/jobkinds_for_tests.py's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import engine.jobs as api
import storage
from conftest import wait_for
from jobs_helpers import (  # noqa: F401 (data_dir, start_worker: fixtures)
    ENV,
    FAST_COUNTER,
    REPO,
    data_dir,
    run_worker_until_idle,
    start_worker,
    state_of,
)
from storage.recovery import pid_alive


def test_killed_job_is_interrupted_then_resumes_to_byte_identical_weights(data_dir, start_worker):
    config = {"steps": 50, "checkpoint_every": 5, "step_seconds": 0.05, "seed": 7}
    start_worker()
    victim = api.submit(data_dir, "counter", config)
    wait_for(lambda: (j := api.get(data_dir, victim.id)).step >= 12 and j.pid, 30, "the job to pass step 12")

    os.kill(api.get(data_dir, victim.id).pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: state_of(data_dir, victim.id) == "interrupted", 15, "the job to become interrupted")
    assert time.monotonic() - killed_at < 15
    checkpoint_step = api.checkpoints(data_dir, victim.id)[-1].step
    assert checkpoint_step >= 10
    assert api.get(data_dir, victim.id).error == (
        f"the training process was killed (signal 9); resume to continue from step {checkpoint_step}"
    )

    reference = api.submit(data_dir, "counter", config)
    api.resume(data_dir, victim.id)
    wait_for(
        lambda: {state_of(data_dir, victim.id), state_of(data_dir, reference.id)} == {"succeeded"},
        60,
        "both runs to succeed",
    )

    resumed_bytes = (data_dir / "jobs" / victim.id / "lora" / "weights.npy").read_bytes()
    assert resumed_bytes == (data_dir / "jobs" / reference.id / "lora" / "weights.npy").read_bytes()
    steps = [p.step for p in api.metrics(data_dir, victim.id, ["loss"])]
    assert steps == list(range(1, 51))  # the repeated steps after the checkpoint are not doubled
    assert "resuming from the checkpoint at step" in api.log_tail(data_dir, victim.id, 200)


def test_cancel_of_a_running_job_stops_it_within_10_s_with_its_last_checkpoint_intact(data_dir, start_worker):
    start_worker()
    job = api.submit(data_dir, "counter", {"steps": 2000, "checkpoint_every": 5, "step_seconds": 0.02})
    wait_for(lambda: api.checkpoints(data_dir, job.id), 30, "a first checkpoint")

    api.cancel(data_dir, job.id)
    asked_at = time.monotonic()
    wait_for(lambda: state_of(data_dir, job.id) == "cancelled", 10, "the job to stop")
    assert time.monotonic() - asked_at < 10

    last = api.checkpoints(data_dir, job.id)[-1]
    assert json.loads(last.path.read_text())["step"] == last.step
    assert not list((data_dir / "jobs" / job.id / "checkpoints").glob("*.tmp"))
    assert api.get(data_dir, job.id).error is None
    with pytest.raises(api.IllegalTransition, match="only a queued or running job can be cancelled"):
        api.cancel(data_dir, job.id)


def test_a_stop_signal_inside_a_database_call_takes_effect_right_after_it():
    """The job process turns SIGTERM into Terminated, but not in the middle of storage's or SQLAlchemy's
    code (it could leave a write lock held and hang the job): there it comes a moment after the call."""
    code = """if True:
        import os, signal, time
        from engine.jobs import runner
        signal.signal(signal.SIGTERM, runner._raise_terminated)
        body = "def call():\\n    os.kill(os.getpid(), signal.SIGTERM)\\n    time.sleep(0.3)\\n    return 'finished'\\n"
        for module in ("storage.outputs", "engine.some_kind"):
            scope = {"__name__": module, "os": os, "signal": signal, "time": time}
            exec(body, scope)
            try:
                print(module, scope["call"](), flush=True)
                time.sleep(5)
                print(module, "never stopped", flush=True)
            except runner.Terminated:
                print(module, "stopped", flush=True)
    """
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == [
        "storage.outputs finished",
        "storage.outputs stopped",
        "engine.some_kind stopped",
    ]


def test_stopping_the_worker_leaves_its_running_job_interrupted_and_resumable(data_dir, start_worker):
    worker = start_worker()
    job = api.submit(data_dir, "counter", {"steps": 2000, "checkpoint_every": 5, "step_seconds": 0.02})
    wait_for(lambda: api.checkpoints(data_dir, job.id), 30, "a first checkpoint")
    pid = api.get(data_dir, job.id).pid

    worker.send_signal(signal.SIGTERM)  # what a studio shutdown does
    assert worker.wait(timeout=15) == 0
    stopped = api.get(data_dir, job.id)
    assert stopped.state == "interrupted" and not pid_alive(pid)
    step = api.checkpoints(data_dir, job.id)[-1].step
    assert stopped.error == f"the job process was stopped; resume to continue from step {step}"
    assert api.resume(data_dir, job.id).state == "queued"


def test_cancel_of_a_queued_job_is_immediate_and_it_can_be_resumed(data_dir):
    job = api.submit(data_dir, "counter", FAST_COUNTER)
    assert api.cancel(data_dir, job.id).state == "cancelled"
    assert api.resume(data_dir, job.id).state == "queued"
    with pytest.raises(api.IllegalTransition, match="only an interrupted, cancelled or failed job can be resumed"):
        api.resume(data_dir, job.id)
    assert [e.to_state for e in api.events(data_dir, job.id)] == ["queued", "cancelled", "queued"]


def test_worker_escalates_to_sigterm_then_sigkill_when_a_job_ignores_cancel(data_dir, start_worker, tmp_path):
    start_worker("--cancel-grace", "2")
    job = api.submit(data_dir, "sleeper", {"seconds": 60, "ignore_sigterm": True})
    wait_for(
        lambda: api.get(data_dir, job.id).pid and "sleeping" in api.log_tail(data_dir, job.id),
        30,
        "the sleeper to start",
    )
    pid = api.get(data_dir, job.id).pid

    api.cancel(data_dir, job.id)
    asked_at = time.monotonic()
    wait_for(lambda: state_of(data_dir, job.id) == "cancelled", 10, "the worker to stop the job")
    assert time.monotonic() - asked_at < 10
    assert not pid_alive(pid)
    worker_log = (tmp_path / "worker-0.txt").read_text()
    assert "sending SIGTERM" in worker_log and "sending SIGKILL" in worker_log


def test_worker_start_reconciles_a_job_left_running_by_a_dead_process(data_dir):
    job = api.submit(data_dir, "counter", FAST_COUNTER)
    db = storage.open_database(data_dir)
    assert storage.jobs.claim_next(db).id == job.id
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    storage.jobs.set_pid(db, job.id, gone.pid)

    worker = run_worker_until_idle(data_dir)

    assert worker.returncode == 0, worker.stderr
    reconciled = api.get(data_dir, job.id)
    assert reconciled.state == "interrupted"
    assert reconciled.error == f"the job process (pid {gone.pid}) is gone; resume to continue from step 0"


def test_two_workers_run_one_accelerator_job_at_a_time(data_dir, start_worker):
    jobs = [api.submit(data_dir, "counter", {**FAST_COUNTER, "step_seconds": 0.05}) for _ in range(3)]
    workers = [start_worker("--exit-when-idle"), start_worker("--exit-when-idle")]
    most_running = 0
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        most_running = max(most_running, len(api.list_jobs(data_dir, ["running"])))
        time.sleep(0.05)
    assert all(w.poll() == 0 for w in workers)
    finished = [api.get(data_dir, job.id) for job in jobs]
    assert [job.state for job in finished] == ["succeeded"] * 3
    assert most_running == 1
    spans = sorted((job.started_at, job.finished_at) for job in finished)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))  # no overlap
