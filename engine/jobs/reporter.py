"""The reporter: how a job kind's run function talks to the studio while it works. It writes progress,
checkpoints and artifacts through storage, keeps the heartbeat going, and turns a cancel request into a
JobCancelled exception at the next progress report.

    def run(config, job_dir, reporter):
        start = reporter.resume_step()          # 0, or the step of the newest checkpoint
        for step in range(start + 1, config.steps + 1):
            loss = train_one_step()
            reporter.progress(step, config.steps, loss=loss)   # may raise JobCancelled
            if step % config.save_every == 0:
                path = save_checkpoint_atomically(job_dir / "checkpoints", step)
                reporter.checkpoint(step, path)
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import storage
from storage import Checkpoint, Database, Job

HEARTBEAT_EVERY_S = 2.0
LOG_PROGRESS_EVERY_S = 10.0


class JobCancelled(BaseException):
    """The user cancelled the job. A BaseException (like KeyboardInterrupt) so that a broad
    `except Exception` in a kind cannot swallow it; let it propagate (after any last checkpoint)."""

    def __init__(self, step: int):
        super().__init__(f"cancelled at step {step}")
        self.step = step


class JobFailed(Exception):
    """A failure the user can act on; its message is stored as the job's error as it is."""


class Reporter:
    """Progress, checkpoints, artifacts and logging of one running job, written through storage."""

    def __init__(self, db: Database, job: Job):
        self._db = db
        self.job_id = job.id
        self.job_dir = job.dir
        self.last_step = job.step
        self._last_logged = 0.0
        self._heartbeat_stop = threading.Event()

    def progress(self, step: int, total: int | None = None, **loss_terms: float) -> None:
        """Record step/total and the latest loss terms (also as metric points) and a heartbeat.

        Raises JobFailed if a loss term is NaN/inf, JobCancelled if the user asked to cancel."""
        values = {name: float(value) for name, value in loss_terms.items()}
        bad = sorted(name for name, value in values.items() if not math.isfinite(value))
        if bad:
            shown = ", ".join(f"{name}={values[name]}" for name in bad)
            raise JobFailed(
                f"training diverged at step {step}: {shown}; lower the learning rate, then resume or start again"
            )
        self.last_step = step
        cancel_requested = storage.outputs.record_progress(self._db, self.job_id, step, total, values)
        now = time.monotonic()
        if now - self._last_logged >= LOG_PROGRESS_EVERY_S or step == total:
            self._last_logged = now
            terms = " ".join(f"{name}={value:.4g}" for name, value in values.items())
            self.log(f"step {step}/{total if total is not None else '?'} {terms}".rstrip())
        if cancel_requested:
            raise JobCancelled(step)

    def log(self, message: str) -> None:
        """A line in the job's log.txt (the job process's stdout goes there)."""
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stdout, flush=True)

    def checkpoint(self, step: int, path: str | Path) -> Checkpoint:
        """Record a checkpoint that is completely written (write to a temp name, then rename)."""
        checkpoint = storage.outputs.add_checkpoint(self._db, self.job_id, step, path)
        self.log(f"checkpoint at step {step}: {path}")
        return checkpoint

    def artifact(self, kind: str, path: str | Path, label: str | None = None) -> None:
        """Record a result file: kind is lora, video, grid, metrics, ..."""
        storage.outputs.add_artifact(self._db, self.job_id, kind, path, label)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest recorded checkpoint whose file still exists, or None."""
        for checkpoint in reversed(storage.outputs.list_checkpoints(self._db, self.job_id)):
            if checkpoint.path.exists():
                return checkpoint
        return None

    def resume_step(self) -> int:
        """The step a resumed job continues from: that of the newest existing checkpoint, else 0."""
        checkpoint = self.latest_checkpoint()
        return 0 if checkpoint is None else checkpoint.step

    @contextmanager
    def heartbeat(self, every: float = HEARTBEAT_EVERY_S) -> Iterator[None]:
        """Keep the job's heartbeat fresh from a background thread while the block runs, so a long step
        without progress reports does not look like a dead process."""
        thread = threading.Thread(target=self._beat, args=(every,), name="job-heartbeat", daemon=True)
        self._heartbeat_stop.clear()
        thread.start()
        try:
            yield
        finally:
            self._heartbeat_stop.set()
            thread.join(timeout=every + 1.0)

    def _beat(self, every: float) -> None:
        while not self._heartbeat_stop.wait(every):
            try:
                storage.outputs.record_heartbeat(self._db, self.job_id)
            except storage.JobNotRunning:
                return
            except Exception as error:  # a missed beat is not fatal; 30 s of them are
                print(f"heartbeat failed: {error}", file=sys.stderr, flush=True)
