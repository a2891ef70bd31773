"""The job process: `python -m engine.jobs.runner --data-dir D --job-id ID`, started by the worker for a
job it has claimed. Runs the kind's run function with a reporter and stores how it ended, as one readable
sentence where it did not succeed. Its stdout and stderr are the job's log.txt."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import traceback

import storage
from storage.states import CANCELLED, FAILED, INTERRUPTED, RUNNING, SUCCEEDED

from . import kinds
from .reporter import JobCancelled, JobFailed, Reporter


class Terminated(BaseException):
    """SIGTERM arrived: the worker is stopping this job (cancel escalation or the studio shutting down)."""


# Modules whose code must not be cut short by an exception from a signal handler.
_DATABASE_MODULES = ("storage", "sqlalchemy", "sqlite3")
RETRY_SIGNAL_AFTER_S = 0.05


def _raise_terminated(signum, frame):
    """SIGTERM -> Terminated, raised where the main thread is, unless that is inside a database call:
    an exception in the middle of one can leave a connection with its write lock held, and the job
    process then hangs on its next write until the worker kills it, and the job's own "interrupted" is
    never stored. There the signal is sent again a moment later, after the call."""
    if _inside_database_call(frame):
        retry = threading.Timer(RETRY_SIGNAL_AFTER_S, os.kill, (os.getpid(), signum))
        retry.daemon = True  # a process that is done anyway does not wait for it
        retry.start()
        return
    raise Terminated(signum)


def _inside_database_call(frame) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__", "").split(".")[0] in _DATABASE_MODULES:
            return True
        frame = frame.f_back
    return False


# How torch.save says the disk filled: its stream writer raises RuntimeError, not OSError(ENOSPC).
_DISK_FULL_WORDS = ("no space left on device", "file write failed", "unexpected pos")


def _is_disk_full(error: BaseException) -> bool:
    """ENOSPC, or torch.save's RuntimeError for a short write (its message, or the OSError it was raised from)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if isinstance(error, (OSError, RuntimeError)) and any(w in str(error).lower() for w in _DISK_FULL_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "out of memory" in str(error).lower()


def run_job(db: storage.Database, job: storage.Job, reporter: Reporter) -> tuple[str, str | None, dict]:
    """Run the job and return (final state, error sentence or None, extra columns to store)."""
    try:
        kind = kinds.get_kind(job.kind)
        config = kinds.load_config(kind, job.config)  # validated at submit; its files are checked again
        start = reporter.resume_step()
        if start:
            # The steps after the checkpoint run again; keep the plot to the run that leads to the result.
            storage.outputs.forget_metrics_after(db, job.id, start)
            reporter.log(f"resuming from the checkpoint at step {start}")
        kind.run(config, job.dir, reporter)
    except JobCancelled as cancelled:
        reporter.log(f"cancelled at step {cancelled.step}")
        return CANCELLED, None, {}
    except (Terminated, KeyboardInterrupt):
        if storage.jobs.get_job(db, job.id).cancel_requested:
            return CANCELLED, None, {}
        return INTERRUPTED, f"the job process was stopped; resume to continue from step {reporter.resume_step()}", {}
    except storage.JobNotRunning:
        raise  # not ours to record: main() stops quietly
    except JobFailed as failure:
        return FAILED, str(failure), {}
    except (OSError, RuntimeError) as error:
        if not _is_disk_full(error):
            return FAILED, _crash_sentence(error, reporter.last_step), {}
        # The kind saves atomically, so the previous checkpoint is intact; the job's step goes back to it.
        resume_from = reporter.resume_step()
        return (
            FAILED,
            f"disk full while saving the checkpoint at step {reporter.last_step}; free space and resume",
            {"step": resume_from},
        )
    except ValueError as error:  # our convention: a ValueError's message is already a readable sentence
        traceback.print_exc()
        return FAILED, str(error), {}
    except Exception as error:
        return FAILED, _crash_sentence(error, reporter.last_step), {}
    return SUCCEEDED, None, {}


def _crash_sentence(error: BaseException, step: int | None = None) -> str:
    traceback.print_exc()
    if _is_out_of_memory(error):
        return f"out of memory at step {step}; lower the batch size or resolution, then resume"
    return f"the job crashed with {type(error).__name__}: {error}; the traceback is in log.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.jobs.runner", description=__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--job-id", required=True)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _raise_terminated)
    db = storage.open_database(args.data_dir)
    job = storage.jobs.get_job(db, args.job_id)
    if job.state != RUNNING:
        print(f"job {job.id} is {job.state}, not running; nothing to do", file=sys.stderr)
        return 3
    reporter = Reporter(db, job)
    reporter.log(f"job {job.id} ({job.kind}) started")
    try:
        with reporter.heartbeat():
            state, error, fields = run_job(db, job, reporter)
    except storage.JobNotRunning as gone:  # someone else decided this job's state (e.g. reconciled)
        print(str(gone), file=sys.stderr, flush=True)
        return 3
    except Terminated:  # SIGTERM while reporting the outcome: the outcome below still gets stored
        state, error, fields = INTERRUPTED, "the job process was stopped", {}
    try:
        storage.jobs.transition(db, job.id, state, error=error, **fields)
    except storage.IllegalTransition as late:
        print(f"could not record the outcome ({state}): {late}", file=sys.stderr, flush=True)
        return 3
    reporter.log(f"job {job.id} {state}" + (f": {error}" if error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
