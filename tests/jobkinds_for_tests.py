"""Job kinds used only by the job-system tests (tests/test_jobs*.py), never shipped as studio features.

A job process finds them through DFD_STUDIO_EXTRA_KINDS=tests.jobkinds_for_tests (with the repo root on
PYTHONPATH). They behave like a trainer in what the job system cares about, with no torch:

- counter: N steps of a seeded random walk ("weights" + RNG state), an atomic checkpoint every K steps,
  resume from the newest checkpoint on disk, final weights in lora/weights.npy. An interrupted and
  resumed run ends with the same bytes as an uninterrupted one. Can report a NaN loss at a given step,
  or hit "disk full" (ENOSPC) at its n-th checkpoint save.
- sleeper: never reports progress, optionally ignores SIGTERM: exercises the worker's cancel escalation.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.jobs.kinds import JobKind, register

WEIGHTS = 8


@dataclass
class CounterConfig:
    steps: int = 20
    checkpoint_every: int = 5
    step_seconds: float = 0.02
    seed: int = 0
    nan_at_step: int | None = None  # report loss=NaN at this step
    disk_full_at_save: int | None = None  # the n-th checkpoint save of this run raises ENOSPC

    def validate(self) -> CounterConfig:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def _write_atomically(path: Path, data: bytes, disk_full: bool = False) -> None:
    """Write to a temp name, then rename: a reader never sees a half-written file. With disk_full, the
    write stops half-way with ENOSPC, as a real full disk would."""
    temp = path.with_name(path.name + ".tmp")
    try:
        with open(temp, "wb") as out:
            if disk_full:
                out.write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temp))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def checkpoint_path(job_dir: Path, step: int) -> Path:
    return job_dir / "checkpoints" / f"step-{step:06d}.json"


def newest_checkpoint(job_dir: Path) -> Path | None:
    found = sorted((job_dir / "checkpoints").glob("step-*.json"))
    return found[-1] if found else None


def run_counter(config: CounterConfig, job_dir: Path, reporter) -> None:
    rng = np.random.default_rng(config.seed)
    weights = np.zeros(WEIGHTS)
    start = 0
    newest = newest_checkpoint(job_dir)
    if newest is not None:
        state = json.loads(newest.read_text())
        start, weights = state["step"], np.array(state["weights"])
        rng.bit_generator.state = state["rng"]
        reporter.log(f"counter resumes at step {start}")
    saves = 0
    for step in range(start + 1, config.steps + 1):
        time.sleep(config.step_seconds)
        weights = weights + 0.1 * rng.standard_normal(WEIGHTS)
        loss = float("nan") if step == config.nan_at_step else float(np.mean(weights**2))
        reporter.progress(step, config.steps, loss=loss, weight_norm=float(np.linalg.norm(weights)))
        if step % config.checkpoint_every == 0 or step == config.steps:
            saves += 1
            state = {"step": step, "weights": weights.tolist(), "rng": rng.bit_generator.state}
            path = checkpoint_path(job_dir, step)
            _write_atomically(path, json.dumps(state).encode(), disk_full=saves == config.disk_full_at_save)
            reporter.checkpoint(step, path)
    final = job_dir / "lora" / "weights.npy"
    final.parent.mkdir(exist_ok=True)
    np.save(final, weights)
    reporter.artifact("lora", final, "final weights")


@dataclass
class SleeperConfig:
    seconds: float = 60.0
    ignore_sigterm: bool = False

    def validate(self) -> SleeperConfig:
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def run_sleeper(config: SleeperConfig, job_dir: Path, reporter) -> None:
    if config.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    reporter.log("sleeping without progress reports")
    deadline = time.monotonic() + config.seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


def _counter_arguments(parser) -> None:
    parser.add_argument("--steps", type=int)
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--step-seconds", type=float)
    parser.add_argument("--seed", type=int)


def _counter_config_from_args(args) -> dict:
    names = ("steps", "checkpoint_every", "step_seconds", "seed")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


COUNTER = register(
    JobKind(
        "counter",
        CounterConfig,
        run_counter,
        needs_accelerator=True,
        help="test fixture: a seeded random walk with checkpoints",
        add_arguments=_counter_arguments,
        config_from_args=_counter_config_from_args,
    )
)
SLEEPER = register(
    JobKind(
        "sleeper",
        SleeperConfig,
        run_sleeper,
        needs_accelerator=True,
        help="test fixture: sleeps without progress reports",
    )
)
