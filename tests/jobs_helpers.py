"""The job system's tests' shared parts: the repository on sys.path as `tests` (the name job processes import
tests/jobkinds_for_tests.py by, whose counter and sleeper kinds are registered here), the environment a worker
runs in, the fixtures `data_dir` (a studio data folder, closed after the test) and `start_worker` (real worker
processes, stopped after the test with any job process left), and the worker's and jobs command lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests.jobkinds_for_tests` is the name the job processes import it by
    sys.path.insert(0, str(REPO))

import engine.jobs as api  # noqa: E402
import storage  # noqa: E402
import tests.jobkinds_for_tests  # noqa: E402,F401  (registers the counter and sleeper kinds here too)
from storage.recovery import pid_alive  # noqa: E402

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    "DFD_STUDIO_EXTRA_KINDS": "tests.jobkinds_for_tests",
}


FAST_COUNTER = {"steps": 6, "checkpoint_every": 3, "step_seconds": 0.01}


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "studio"
    storage.close_all()


@pytest.fixture
def start_worker(data_dir, tmp_path):
    """Start `worker` processes; afterwards stop them (SIGTERM, then SIGKILL) and any job process left."""
    workers: list[subprocess.Popen] = []

    def start(*flags: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(workers)}.txt", "wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.jobs", "worker", "--data-dir", str(data_dir), "--poll", "0.1", *flags],
            cwd=REPO,
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    if (data_dir / "studio.db").exists():
        for job in api.list_jobs(data_dir, ["running"]):  # job processes of our workers only
            if pid_alive(job.pid):
                os.kill(job.pid, signal.SIGKILL)


def run_worker_until_idle(data_dir, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.jobs",
            "worker",
            "--data-dir",
            str(data_dir),
            "--poll",
            "0.1",
            "--exit-when-idle",
        ],
        cwd=REPO,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def jobs_cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.jobs", "jobs", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


def state_of(data_dir, job_id) -> str:
    return api.get(data_dir, job_id).state
