"""A job kind for tests/test_jobs_failures.py only: saves its checkpoints with torch.save, as the trainer does, and
saves one of them into a file whose writes fail with ENOSPC after the first kilobyte, as a full disk's do.
torch.save turns that into its own RuntimeError ("unexpected pos ..."), which must reach the runner as a
full disk, not as a crash."""

from __future__ import annotations

import errno
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from engine.distill.checkpoints import write_checkpoint
from engine.jobs.kinds import JobKind, register


@dataclass
class TorchSaverConfig:
    steps: int = 4
    full_at_step: int = 4  # the checkpoint of this step goes to /dev/full

    def validate(self) -> TorchSaverConfig:
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class FullDisk(io.FileIO):
    """A file on a disk with room for `room` bytes."""

    def __init__(self, path: Path, room: int = 1024):
        super().__init__(path, "wb")
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
        return super().write(data)


def run_torch_saver(config: TorchSaverConfig, job_dir: Path, reporter) -> None:
    for step in range(reporter.resume_step() + 1, config.steps + 1):
        reporter.progress(step, config.steps, loss=1.0 / step)
        state = {"step": step, "weights": torch.full((4096,), float(step))}
        if step == config.full_at_step:
            with FullDisk(job_dir / "state.pt.partial") as full:
                torch.save(state, full)
        reporter.checkpoint(step, write_checkpoint(job_dir, step, state))


TORCH_SAVER = register(
    JobKind(
        "torch_saver",
        TorchSaverConfig,
        run_torch_saver,
        needs_accelerator=False,
        help="test fixture: torch.save checkpoints, one onto a full device",
    )
)
