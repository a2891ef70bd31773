"""The job system end to end with real parts: a real SQLite file, real worker and job processes
(`python -m engine.jobs.cli worker`), real signals. The job kinds are the fixtures in
tests/jobkinds_for_tests.py (a seeded counter with checkpoints, a sleeper), never the shipped ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests.jobkinds_for_tests` is the name the job processes import it by
    sys.path.insert(0, str(REPO))

import engine.jobs as api  # noqa: E402
import storage  # noqa: E402
import tests.jobkinds_for_tests  # noqa: E402,F401  (registers the counter and sleeper kinds here too)
from conftest import wait_for  # noqa: E402
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


def run_worker_until_idle(data_dir, timeout: float = 60) -> subprocess.CompletedProcess:
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
        env=ENV,
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


def test_cli_submits_runs_and_shows_a_job_end_to_end(data_dir):
    submitted = jobs_cli(
        data_dir,
        "submit",
        "--kind",
        "counter",
        "--steps",
        "6",
        "--checkpoint-every",
        "3",
        "--step-seconds",
        "0.01",
        "--json",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]

    worker = run_worker_until_idle(data_dir)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    shown = jobs_cli(data_dir, "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert (job["id"], job["kind"], job["state"], job["step"], job["total"], job["error"]) == (
        job_id,
        "counter",
        "succeeded",
        6,
        6,
        None,
    )
    assert isinstance(job["pid"], int) and job["config"]["steps"] == 6
    assert job["checkpoint_steps"] == [3, 6]
    assert [(a["kind"], Path(a["path"]).name) for a in job["artifacts"]] == [("lora", "weights.npy")]
    log = (data_dir / "jobs" / job_id / "log.txt").read_text()
    assert "step 6/6" in log and f"job {job_id} succeeded" in log
    assert [j["id"] for j in json.loads(jobs_cli(data_dir, "list", "--json").stdout)] == [job_id]


def test_cli_errors_are_one_line_with_exit_code_2_and_queue_nothing(data_dir):
    for args in (
        ("show", "j-20250101-000000"),
        ("submit", "--kind", "counter", "--steps", "0"),
        ("resume", "j-20250101-000000"),
        ("submit", "--kind", "distill", "--base", "no-such-user/no-such-model"),
    ):
        result = jobs_cli(data_dir, *args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
    assert "steps must be at least 1" in jobs_cli(data_dir, "submit", "--kind", "counter", "--steps", "0").stderr
    assert "could not fetch 'no-such-user/no-such-model'" in result.stderr  # the last: the base is checked at submit
    assert api.list_jobs(data_dir) == []


def test_validation_error_at_submit_writes_no_row_and_no_folder(data_dir):
    with pytest.raises(ValueError, match="steps must be at least 1, got 0"):
        api.submit(data_dir, "counter", {"steps": 0})
    with pytest.raises(ValueError, match="unknown setting.* learning_rate .* the settings are: steps"):
        api.submit(data_dir, "counter", {"learning_rate": 1e-4})
    with pytest.raises(ValueError, match="unknown job kind 'teleport'; the known kinds are: .*counter.*distill"):
        api.submit(data_dir, "teleport", {})
    with pytest.raises(ValueError, match="DFD is a post-training stage"):
        api.submit(data_dir, "distill", {"method": "dfd"})
    assert not (data_dir / "studio.db").exists()  # not even the database was created
    job = api.submit(data_dir, "counter", {"steps": 3})
    with pytest.raises(ValueError, match="steps must be at least 1"):
        api.submit(data_dir, "counter", {"steps": -1})
    assert [j.id for j in api.list_jobs(data_dir)] == [job.id]
    assert [p.name for p in (data_dir / "jobs").iterdir()] == [job.id]


def test_sample_kind_is_validated_by_sample_config_and_its_options_map_to_it(data_dir):
    from engine.cli.jobs import _JobsParser  # the submit parser, as `jobs submit` builds it

    parser = _JobsParser(kind_options=True)
    parser.add_argument("--kind")
    args = parser.parse_args(
        ["--kind", "sample", "--prompt", "a red circle", "--seeds", "1-3", "--steps", "4", "--cfg", "3.5"]
    )
    settings = api.get_kind("sample").config_from_args(args)
    assert settings == {"prompt": "a red circle", "seeds": [1, 2, 3], "steps": 4, "guidance": 3.5}
    with pytest.raises(ValueError, match="the prompt is empty"):
        api.submit(data_dir, "sample", {**settings, "prompt": " "})
    assert api.list_jobs(data_dir) == []
    job = api.submit(data_dir, "sample", settings)
    assert job.config["seeds"] == [1, 2, 3] and job.config["base"] == "shapes-tiny"  # SampleConfig's default


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


def test_nan_loss_fails_the_job_with_a_readable_error(data_dir):
    job = api.submit(data_dir, "counter", {**FAST_COUNTER, "nan_at_step": 4})
    run_worker_until_idle(data_dir)
    failed = api.get(data_dir, job.id)
    assert failed.state == "failed"
    assert failed.error == (
        "training diverged at step 4: loss=nan; lower the learning rate, then resume or start again"
    )
    assert failed.step == 3


def test_disk_full_while_saving_fails_the_job_with_the_previous_checkpoint_intact(data_dir):
    job = api.submit(
        data_dir, "counter", {"steps": 20, "checkpoint_every": 4, "step_seconds": 0.01, "disk_full_at_save": 2}
    )
    run_worker_until_idle(data_dir)
    failed = api.get(data_dir, job.id)
    assert (failed.state, failed.error) == (
        "failed",
        "disk full while saving the checkpoint at step 8; free space and resume",
    )
    assert failed.step == 4  # not advanced past the last good checkpoint
    assert [c.step for c in api.checkpoints(data_dir, job.id)] == [4]
    files = sorted(p.name for p in (data_dir / "jobs" / job.id / "checkpoints").iterdir())
    assert files == ["step-000004.json"]
    assert json.loads((data_dir / "jobs" / job.id / "checkpoints" / files[0]).read_text())["step"] == 4
    assert api.resume(data_dir, job.id).state == "queued"


def test_disk_full_in_torch_save_is_told_as_disk_full_not_as_a_crash(data_dir):
    """torch.save reports a full disk as RuntimeError ("unexpected pos", "file write failed"), not OSError."""
    env = {**ENV, "DFD_STUDIO_EXTRA_KINDS": "tests.jobkinds_for_tests,tests.jobkinds_torch_save"}
    import tests.jobkinds_torch_save  # noqa: F401  (registers torch_saver here, for submit)

    job = api.submit(data_dir, "torch_saver", {"steps": 4, "full_at_step": 3})
    worker = subprocess.run(
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
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    failed = api.get(data_dir, job.id)
    assert (failed.state, failed.error) == (
        "failed",
        "disk full while saving the checkpoint at step 3; free space and resume",
    ), worker.stderr
    assert failed.step == 2 and [c.step for c in api.checkpoints(data_dir, job.id)] == [1, 2]


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


def test_rows_queued_before_the_grouping_load_as_the_job_process_loads_them(tmp_path):
    import shutil

    from engine.config.distill import DistillConfig
    from engine.config.sample import SampleConfig
    from engine.jobs.kinds import get_kind, load_config

    shutil.copytree(REPO / "tests" / "data" / "jobs_before_grouping", tmp_path / "studio_data")
    loaded = {
        job.kind: load_config(get_kind(job.kind), api.get(tmp_path / "studio_data", job.id).config)
        for job in api.list_jobs(tmp_path / "studio_data")
    }
    assert (type(loaded["distill"]), type(loaded["sample"])) == (DistillConfig, SampleConfig)
    assert (loaded["distill"].method, loaded["distill"].steps, loaded["sample"].steps) == ("dmd2", 10, 4)


def test_a_checkpoint_that_would_run_code_is_refused_with_what_to_do(tmp_path):
    import torch

    from engine.distill.checkpoints import read_checkpoint, write_checkpoint

    good = write_checkpoint(
        tmp_path,
        3,
        {
            "step": 3,
            "opt": {"state": {0: {"exp_avg": torch.ones(2)}}},
            "gen": torch.Generator().get_state(),
            "coin": {"state": {"inc": 2**100}},
        },
    )
    assert read_checkpoint(good)["coin"]["state"]["inc"] == 2**100  # what the trainer stores loads weights-only

    planted = tmp_path / "checkpoints" / "step-0000004"
    planted.mkdir()
    torch.save({"step": 4, "payload": Planted()}, planted / "state.pt")
    with pytest.raises(
        ValueError,
        match=r"holds more than tensors and plain values \(it asks for .*system\); "
        r"DFD Studio did not write it: delete step-0000004",
    ):
        read_checkpoint(planted)
    assert not (tmp_path / "ran").exists()


class Planted:
    def __reduce__(self):
        return os.system, ("touch ran",)


def test_written_files_land_together_or_not_at_all(tmp_path):
    from engine.models.folders import written_files

    student = tmp_path / "lora"
    student.mkdir()
    (student / "adapter.safetensors").write_bytes(b"old weights")
    (student / "checkpoints").mkdir()  # what else the folder holds stays
    with pytest.raises(OSError):
        with written_files(student, last=("adapter.safetensors",)) as tmp:
            (tmp / "adapter.safetensors").write_bytes(b"new wei")
            raise OSError(28, "No space left on device")
    assert (student / "adapter.safetensors").read_bytes() == b"old weights"
    assert sorted(p.name for p in student.iterdir()) == ["adapter.safetensors", "checkpoints"]

    with written_files(student, last=("adapter.safetensors",)) as tmp:
        (tmp / "adapter.safetensors").write_bytes(b"new weights")
        (tmp / "lora_config.json").write_text("{}")
    assert (student / "adapter.safetensors").read_bytes() == b"new weights"
    assert sorted(p.name for p in student.iterdir()) == ["adapter.safetensors", "checkpoints", "lora_config.json"]
