"""The worker: takes queued jobs one at a time (oldest first) and runs each in its own process.

    python -m engine worker [--data-dir D] [--once | --exit-when-idle]

Per job: claim it atomically, take the accelerator slot if it needs one, start
`python -m engine.jobs.runner` with an argument list (never a shell) and its output appended to the job's
log.txt, record its pid, then watch it: a cancel request that the job does not honour in time gets SIGTERM
and then SIGKILL; a process that dies without reporting (killed, out of memory) leaves the job
`interrupted` with the reason. At start and every little while, rows left `running` by dead processes
are reconciled to `interrupted`.

An exception in the loop itself (a locked database, a full disk) does not end the worker: it is logged with
its reason, recorded in worker.json (engine/jobs/health.py), and the loop goes on after a pause that doubles
up to BACKOFF_MAX_S. Job processes get the worker's environment less its secrets (`job_environment`). A job
does not start on a disk with less free than DFD_STUDIO_MIN_FREE_MB (engine/jobs/disk.py): it fails with that
reason and nothing written, and resumes once space is freed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import storage
from storage.states import CANCELLED, FAILED, INTERRUPTED, RUNNING

from . import disk, health, kinds
from .slot import AcceleratorSlot, accelerator_present

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the engine package
WATCH_EVERY_S = 0.25
RECONCILE_EVERY_S = 10.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0

# Variables a job process never sees: the Hub token and the studio's logins. A job reads public weights only;
# a token in its environment would be readable by any code a job runs (a custom base's remote code, a data
# loader) and printable into a log that visitors may read.
SECRET_NAMES = {
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "HF_API_TOKEN",
    "DFD_STUDIO_PASSWORD",
    "DFD_STUDIO_AUTH",
    "GRADIO_AUTH",
    "OAUTH_CLIENT_SECRET",
    "WANDB_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
}
SECRET_PATTERN = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)


def job_environment(environ=None) -> dict[str, str]:
    """The environment a job process runs with: the worker's, less SECRET_NAMES and any name matching
    SECRET_PATTERN (HF_TOKEN_PATH and the like go too: a path to a token is as good as the token)."""
    environ = os.environ if environ is None else environ
    return {
        name: value for name, value in environ.items() if name not in SECRET_NAMES and not SECRET_PATTERN.search(name)
    }


@dataclass
class WorkerOptions:
    once: bool = False  # run at most one job, then exit
    exit_when_idle: bool = False  # exit when no job is queued
    poll_s: float = 1.0  # how often to look for queued jobs
    cancel_grace_s: float = 10.0  # after a cancel request: SIGTERM at half of it, SIGKILL at all of it
    stop_grace_s: float = 10.0  # when the worker is stopped: SIGTERM at once, SIGKILL after this


class Worker:
    """Runs the jobs of one data dir, one at a time."""

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        options: WorkerOptions | None = None,
        out=sys.stderr,
        stopping: threading.Event | None = None,
    ):
        self.options = options or WorkerOptions()
        self.db = storage.open_database(data_dir)
        self.slot = AcceleratorSlot(self.db.layout.gpu_lock_path)
        self.has_accelerator = accelerator_present()
        self.stopping = stopping or threading.Event()
        self._out = out
        self._last_reconcile = 0.0
        self._started_at = time.time()
        self._last_beat = 0.0
        self._backoff_s = BACKOFF_FIRST_S

    def say(self, message: str) -> None:
        print(f"[worker {os.getpid()}] {message}", file=self._out, flush=True)

    def needs_slot(self, kind_name: str) -> bool:
        try:
            needs_accelerator = kinds.get_kind(kind_name).needs_accelerator
        except ValueError:
            needs_accelerator = True  # unknown kind: its process will fail it; do not let it run beside a GPU job
        return needs_accelerator or not self.has_accelerator

    def beat(self, error: str | None = None) -> None:
        if error is not None or time.monotonic() - self._last_beat >= health.BEAT_EVERY_S:
            self._last_beat = time.monotonic()
            health.beat(self.db.layout.root, self._started_at, error)

    def survive(self, error: Exception) -> None:
        """Log why one pass of the loop failed, record it for the Jobs tab, and wait before the next pass
        (doubling the wait up to BACKOFF_MAX_S while the failure repeats)."""
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        self.say(f"the loop failed ({reason}); trying again in {self._backoff_s:g} s")
        traceback.print_exc(file=self._out)
        self.beat(error=reason)
        self.stopping.wait(self._backoff_s)
        self._backoff_s = min(BACKOFF_MAX_S, self._backoff_s * 2)

    def reconcile(self) -> None:
        self._last_reconcile = time.monotonic()
        for job in storage.recovery.reconcile(self.db):
            self.say(f"{job.id} was left running by a dead process; now interrupted: {job.error}")

    def run(self) -> int:
        """The loop. Returns the number of jobs run."""
        self.say(f"watching {self.db.layout.root} ({'accelerator' if self.has_accelerator else 'CPU only'})")
        self.beat()
        ran = 0
        reason = None
        try:
            self._guarded(self.reconcile)
            while not self.stopping.is_set():
                self.beat()
                try:
                    claimed = self._claim()
                    if claimed is None:
                        if self.options.once or (
                            self.options.exit_when_idle and storage.jobs.count_queued(self.db) == 0
                        ):
                            break
                        if time.monotonic() - self._last_reconcile > RECONCILE_EVERY_S:
                            self.reconcile()
                        self._backoff_s = BACKOFF_FIRST_S
                        self.stopping.wait(self.options.poll_s)
                        continue
                    job, holds_slot = claimed
                    try:
                        self._run(job, holds_slot)
                    finally:
                        self.slot.release()
                except Exception as error:  # the loop outlives it; a job it held is reconciled later
                    self.survive(error)
                    continue
                self._backoff_s = BACKOFF_FIRST_S
                ran += 1
                if self.options.once:
                    break
        except BaseException as fatal:
            reason = f"{type(fatal).__name__}: {fatal}".splitlines()[0][:300]
            raise
        finally:
            self.slot.close()
            if reason is None:
                reason = "stopped by a signal" if self.stopping.is_set() else "exited: no job left to run"
            health.stopped(self.db.layout.root, reason)
        self.say(f"stopped after {ran} job(s)")
        return ran

    def _guarded(self, call) -> None:
        try:
            call()
        except Exception as error:
            self.survive(error)

    def _claim(self) -> tuple[storage.Job, bool] | None:
        """The oldest queued job this worker may run now, and whether it holds the accelerator slot."""
        if self.slot.try_acquire():
            job = storage.jobs.claim_next(self.db)
            if job is None:
                self.slot.release()
                return None
            if not self.needs_slot(job.kind):
                self.slot.release()
            return job, self.slot.held
        free_kinds = [name for name in kinds.kind_names() if not self.needs_slot(name)]
        job = storage.jobs.claim_next(self.db, kinds=free_kinds)
        return None if job is None else (job, False)

    def _run(self, job: storage.Job, holds_slot: bool) -> None:
        if not self._room_to_start(job):
            return
        log_path = self.db.layout.log_path(job.id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "engine.jobs.runner",
            "--data-dir",
            str(self.db.layout.root),
            "--job-id",
            job.id,
        ]
        env = dict(job_environment(), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self.say(f"running {job.id} ({job.kind})")
        with open(log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} worker {os.getpid()} starts {job.id}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group: signals reach its children too
                    pass_fds=(self.slot.fileno,) if holds_slot else (),
                )
            except OSError as error:
                storage.jobs.transition(self.db, job.id, FAILED, error=f"could not start the job process: {error}")
                return
        storage.jobs.set_pid(self.db, job.id, process.pid)
        returncode = self._watch(job, process)
        self._settle(job, returncode)

    def _room_to_start(self, job: storage.Job) -> bool:
        """Whether the disk has room for the job to start; if not, the job fails with the reason before anything
        of it is written (no log line, no checkpoint), and a resume once space is freed runs it as it was."""
        try:
            disk.check_free_disk(
                self.db.layout.root,
                "the job did not start and wrote nothing",
                "resume it once space is freed",
            )
        except ValueError as short:  # also a malformed DFD_STUDIO_MIN_FREE_MB: the job says which and why
            storage.jobs.transition(self.db, job.id, FAILED, error=str(short), reason="not started: disk short")
            self.say(f"{job.id} failed: {short}")
            return False
        return True

    def _watch(self, job: storage.Job, process: subprocess.Popen) -> int:
        """Wait for the job process, enforcing cancel requests and worker stops. Returns its exit code."""
        cancel_seen = stop_seen = None
        sent: set[int] = set()
        while process.poll() is None:
            now = time.monotonic()
            self.beat()
            if self.stopping.is_set():
                stop_seen = stop_seen or now
                self._signal(process, signal.SIGTERM, sent)
                if now - stop_seen >= self.options.stop_grace_s:
                    self._signal(process, signal.SIGKILL, sent)
            elif cancel_seen is None:
                if self._cancel_requested(job.id):
                    cancel_seen = now
            else:
                if now - cancel_seen >= self.options.cancel_grace_s / 2:
                    self._signal(process, signal.SIGTERM, sent)
                if now - cancel_seen >= self.options.cancel_grace_s:
                    self._signal(process, signal.SIGKILL, sent)
            time.sleep(WATCH_EVERY_S)
        return process.wait()

    def _cancel_requested(self, job_id: str) -> bool:
        """Whether the job was asked to stop; a failed read (locked database) is logged and counts as no,
        so the watch goes on: leaving it would lose track of a job process that is still running."""
        try:
            return storage.jobs.get_job(self.db, job_id).cancel_requested
        except Exception as error:
            self.say(f"could not read {job_id}'s cancel flag ({type(error).__name__}: {error}); still watching")
            return False

    def _signal(self, process: subprocess.Popen, signum: int, sent: set[int]) -> None:
        if signum in sent:
            return
        sent.add(signum)
        self.say(f"sending {signal.Signals(signum).name} to job process {process.pid}")
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def _settle(self, job: storage.Job, returncode: int) -> None:
        """After the job process exited: if it did not store an outcome itself, store why it ended."""
        current = storage.jobs.get_job(self.db, job.id)
        if current.state != RUNNING:
            self.say(f"{job.id} {current.state}" + (f": {current.error}" if current.error else ""))
            return
        checkpoint = storage.outputs.latest_checkpoint(self.db, job.id)
        resume_hint = f"resume to continue from step {checkpoint.step if checkpoint else 0}"
        if current.cancel_requested:
            state, error = CANCELLED, None
        elif self.stopping.is_set():
            state, error = INTERRUPTED, f"the worker was stopped while the job ran; {resume_hint}"
        elif returncode < 0:
            state, error = INTERRUPTED, f"the training process was killed (signal {-returncode}); {resume_hint}"
        else:
            state = FAILED
            error = f"the job process exited with code {returncode} without reporting a result; see log.txt"
        try:
            storage.jobs.transition(self.db, job.id, state, error=error, reason=f"job process exit code {returncode}")
        except storage.IllegalTransition:  # someone else settled it meanwhile
            return
        self.say(f"{job.id} {state}" + (f": {error}" if error else ""))


def run_worker(data_dir: str | os.PathLike | None = None, options: WorkerOptions | None = None) -> int:
    """Run a worker in this process until stopped (SIGINT/SIGTERM) or, with the options, until idle."""
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # Setting `stopping` ends the loop; a running job is stopped and left `interrupted` (resumable).
        # Installed before the database is opened: a stop that arrives while the worker starts (the studio
        # closing at once) ends it cleanly instead of killing it mid-start (exit -15, half-opened).
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
    return Worker(data_dir, options, stopping=stopping).run()
