"""The accelerator slot: at most one job uses the GPU at a time, however many workers run.

An exclusive flock on <data_dir>/gpu.lock. The worker takes it before claiming a job that needs the
accelerator and passes the locked file to the job process, so the lock lives as long as either of them:
if the worker dies, a still-running job keeps the slot until it exits. The kernel drops the lock when
the last holder dies, so a crash never leaves a stale lock behind.

On a machine without an accelerator every job counts as needing the slot: training jobs share the CPU
badly, so one at a time is the fastest order there too."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..core.hardware import accelerator_present  # noqa: F401  (the worker reads it from here)


class AcceleratorSlot:
    """Non-blocking exclusive lock on one file; `fileno` is what to hand to the job process."""

    def __init__(self, lock_path: str | os.PathLike):
        self.path = Path(lock_path)
        self.fileno = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.held = False

    def try_acquire(self) -> bool:
        """Take the slot if free; True if this process now holds it."""
        if self.held:
            return True
        try:
            fcntl.flock(self.fileno, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.held = True
        return True

    def release(self) -> None:
        if self.held:
            fcntl.flock(self.fileno, fcntl.LOCK_UN)
            self.held = False

    def close(self) -> None:
        self.release()
        os.close(self.fileno)
