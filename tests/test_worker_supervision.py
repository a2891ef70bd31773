"""The worker under failure, with real parts: a worker loop whose claim fails once keeps going and says why;
worker.json tells a running worker from a stopped or killed one; app.py's supervisor starts a killed worker
again; a job process never sees the tokens and passwords of the worker's environment."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import app  # noqa: E402
import engine  # noqa: E402
import engine.jobs as api  # noqa: E402
import storage  # noqa: E402
import tests.jobkinds_for_tests  # noqa: E402,F401  (registers the counter and sleeper kinds)
from conftest import wait_for  # noqa: E402
from engine.jobs import worker as worker_module  # noqa: E402
from engine.jobs.health import health_path  # noqa: E402
from storage.recovery import pid_alive  # noqa: E402

TEST_KINDS = {
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    "DFD_STUDIO_EXTRA_KINDS": "tests.jobkinds_for_tests",
}


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "studio"
    storage.close_all()


def _worker_process(data_dir: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir), "--poll", "0.1"],
            cwd=REPO,
            env={**os.environ, **TEST_KINDS, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_claim_that_fails_once_is_logged_and_the_worker_goes_on_to_run_the_job(data_dir, monkeypatch):
    for name, value in TEST_KINDS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(worker_module, "BACKOFF_FIRST_S", 0.1)
    job = api.submit(data_dir, "counter", {"steps": 4, "checkpoint_every": 2, "step_seconds": 0.01})
    real_claim, calls = storage.jobs.claim_next, []

    def claim_locked_once(*args, **kwargs):  # what SQLite says when another writer holds the lock too long
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(storage.jobs, "claim_next", claim_locked_once)
    out = io.StringIO()
    options = worker_module.WorkerOptions(exit_when_idle=True, poll_s=0.05)
    ran = worker_module.Worker(data_dir, options, out=out).run()

    assert ran == 1 and api.get(data_dir, job.id).state == "succeeded", out.getvalue()
    assert "the loop failed (OperationalError: database is locked); trying again in 0.1 s" in out.getvalue()
    health = engine.worker_health(data_dir)
    assert not health.running and health.reason == "exited: no job left to run"
    assert "database is locked" in health_path(data_dir).read_text()  # the last error it survived


def test_worker_health_tells_running_from_stopped_and_killed(data_dir, tmp_path):
    assert engine.worker_health(data_dir).line() == "worker: not started (queued jobs wait)"
    worker = _worker_process(data_dir, tmp_path / "worker.log")
    try:
        running = wait_for(lambda: (h := engine.worker_health(data_dir)).running and h, 30, "a running worker")
        assert running.pid == worker.pid and running.line().startswith(f"worker: running (pid {worker.pid}, since ")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed = engine.worker_health(data_dir)
        assert not killed.running and f"its process {worker.pid} is gone" in killed.reason
        assert killed.line().startswith("worker: stopped since ") and killed.line().endswith("queued jobs wait")
    finally:
        _stop(worker)
    again = _worker_process(data_dir, tmp_path / "worker-2.log")
    try:
        wait_for(lambda: engine.worker_health(data_dir).pid == again.pid, 30, "the second worker's beat")
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=15) == 0
        assert engine.worker_health(data_dir).reason == "stopped by a signal"
    finally:
        _stop(again)


def test_the_app_restarts_a_killed_worker_and_says_so_meanwhile(data_dir, capfd):
    data_dir.mkdir(parents=True)
    supervisor = app.WorkerSupervisor(data_dir, first_backoff_s=1.0, check_every_s=0.1).start()
    try:
        first = supervisor.worker.pid
        wait_for(lambda: engine.worker_health(data_dir).running, 30, "the first worker's beat")
        os.kill(first, signal.SIGKILL)
        line = wait_for(
            lambda: "restarting" in (text := engine.worker_health(data_dir).line()) and text,
            10,
            "the supervisor to record the death",
        )
        assert "stopped since" in line and "the worker killed by signal 9; restarting in 1 s" in line
        restarted = wait_for(
            lambda: (h := engine.worker_health(data_dir)).running and h.pid != first and h, 30, "a restarted worker"
        )
        assert restarted.pid == supervisor.worker.pid and supervisor.restarts == 1
    finally:
        supervisor.stop()
    assert not pid_alive(supervisor.worker.pid)
    assert "the worker killed by signal 9; restarting in 1 s" in capfd.readouterr().err


def test_a_job_process_gets_no_token_or_password(data_dir, tmp_path):
    secrets = {
        "HF_TOKEN": "hf_secretsecret",
        "HUGGING_FACE_HUB_TOKEN": "hf_other",
        "DFD_STUDIO_PASSWORD": "pw",
        "MY_SERVICE_API_KEY": "k",
    }
    worker = _worker_process(data_dir, tmp_path / "worker.log", env={**secrets, "DFD_KEEP_ME": "yes"})
    job = api.submit(data_dir, "sleeper", {"seconds": 60})
    try:
        pid = wait_for(lambda: api.get(data_dir, job.id).pid, 30, "the job process")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert "DFD_KEEP_ME" in names and "DFD_STUDIO_EXTRA_KINDS" in names  # the rest of the environment stays
        assert not names & set(secrets)
        worker_env = Path(f"/proc/{worker.pid}/environ").read_bytes()
        assert b"HF_TOKEN=hf_secretsecret" in worker_env  # the worker had them: the job's were removed
        api.cancel(data_dir, job.id)
        wait_for(lambda: api.get(data_dir, job.id).state == "cancelled", 30, "the cancel")
    finally:
        _stop(worker)
        running = api.get(data_dir, job.id)
        if running.state == "running" and pid_alive(running.pid):
            os.kill(running.pid, signal.SIGKILL)


def test_job_environment_keeps_ordinary_variables_and_drops_secrets():
    environ = {
        "PATH": "/bin",
        "HF_HOME": "/data/hf",
        "HF_TOKEN_PATH": "/t",
        "GRADIO_AUTH": "a:b",
        "AWS_SECRET_ACCESS_KEY": "s",
        "CUDA_VISIBLE_DEVICES": "0",
    }
    kept = worker_module.job_environment(environ)
    assert kept == {"PATH": "/bin", "HF_HOME": "/data/hf", "CUDA_VISIBLE_DEVICES": "0"}


def test_a_job_on_a_short_disk_fails_with_why_writes_nothing_and_resumes_once_space_is_freed(data_dir, monkeypatch):
    for name, value in TEST_KINDS.items():
        monkeypatch.setenv(name, value)
    job = api.submit(data_dir, "counter", {"steps": 4, "checkpoint_every": 2, "step_seconds": 0.01})
    submitted = sorted(p.relative_to(job.dir) for p in Path(job.dir).rglob("*"))
    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", str(10**12))  # more than any disk has
    out = io.StringIO()
    worker_module.Worker(data_dir, worker_module.WorkerOptions(once=True, poll_s=0.05), out=out).run()

    failed = api.get(data_dir, job.id)
    assert failed.state == "failed" and failed.error.startswith("this machine's disk has "), out.getvalue()
    assert failed.error.endswith(
        "MB free, less than the 1000000000000 MB the studio keeps free, so the job did not start and wrote nothing; "
        "resume it once space is freed (the owner can free space, or change DFD_STUDIO_MIN_FREE_MB)"
    )
    assert sorted(p.relative_to(job.dir) for p in Path(job.dir).rglob("*")) == submitted  # no log, no checkpoint
    assert f"{job.id} failed: this machine's disk has" in out.getvalue()

    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", "lots")  # a malformed bound fails the job saying which and why
    api.resume(data_dir, job.id)
    worker_module.Worker(data_dir, worker_module.WorkerOptions(once=True, poll_s=0.05), out=out).run()
    assert api.get(data_dir, job.id).error == (
        "DFD_STUDIO_MIN_FREE_MB='lots' is not a whole number; set it to one, or unset it for 1024"
    )

    monkeypatch.delenv("DFD_STUDIO_MIN_FREE_MB")  # space freed: the same job resumes and runs to the end
    api.resume(data_dir, job.id)
    worker_module.Worker(data_dir, worker_module.WorkerOptions(exit_when_idle=True, poll_s=0.05), out=out).run()
    done = api.get(data_dir, job.id)
    assert done.state == "succeeded" and done.step == 4, out.getvalue()
