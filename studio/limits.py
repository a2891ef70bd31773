"""How much a visitor of a public studio may ask of the machine: the size of a run, the jobs waiting, the disk.

The run config allows what a big machine's owner may want (a million steps, batches of 4096, 4096-pixel
sides, a checkpoint every step, the owner's tracker accounts); a visitor's run is held to these bounds,
each overridable by the owner through an environment variable (docs/security.md, "Limits and the owner's
overrides", lists them with the rest):

    DFD_STUDIO_MAX_STEPS        steps of one run (default 5000)
    DFD_STUDIO_MAX_BATCH        clips per update, batch_size x grad_accum (default 16)
    DFD_STUDIO_MAX_FRAMES       num_frames of a run and Compare's Video frames (default 81, Wan2.1's)
    DFD_STUDIO_MAX_SIDE         height and width, each (default 832, the long side of Wan2.1-1.3B's 480 x 832)
    DFD_STUDIO_MIN_INTERVAL     the fewest steps between checkpoints and between previews (default 50)
    DFD_STUDIO_MAX_REPEATS      a data-set config's repeats (default 10)
    DFD_STUDIO_TRACKERS         trackers a run may log to (comma-separated; default none: they use the owner's keys)
    DFD_STUDIO_MAX_QUEUED       jobs waiting in the queue, all visitors together (default 10)
    DFD_STUDIO_MAX_SCAN         video headers one web request reads when scanning data (default 200)
    DFD_STUDIO_MIN_FREE_MB      disk kept free: an upload or a job that would leave less is refused (default 1024;
                                this one holds for a local studio too)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import engine


def _int(environ, name: str, default: int) -> int:
    value = (environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number; set it to one, or unset it for {default}") from None


@dataclass(frozen=True)
class PublicLimits:
    max_steps: int = 5000
    max_batch: int = 16
    max_frames: int = 81
    max_side: int = 832
    min_interval: int = 50
    max_repeats: int = 10
    trackers: tuple[str, ...] = ()
    max_queued: int = 10
    max_scan: int = 200

    @classmethod
    def from_env(cls, environ=None) -> PublicLimits:
        environ = os.environ if environ is None else environ
        d = cls()
        trackers = tuple(t.strip() for t in environ.get("DFD_STUDIO_TRACKERS", "").split(",") if t.strip())
        return cls(
            max_steps=_int(environ, "DFD_STUDIO_MAX_STEPS", d.max_steps),
            max_batch=_int(environ, "DFD_STUDIO_MAX_BATCH", d.max_batch),
            max_frames=_int(environ, "DFD_STUDIO_MAX_FRAMES", d.max_frames),
            max_side=_int(environ, "DFD_STUDIO_MAX_SIDE", d.max_side),
            min_interval=_int(environ, "DFD_STUDIO_MIN_INTERVAL", d.min_interval),
            max_repeats=_int(environ, "DFD_STUDIO_MAX_REPEATS", d.max_repeats),
            trackers=trackers,
            max_queued=_int(environ, "DFD_STUDIO_MAX_QUEUED", d.max_queued),
            max_scan=_int(environ, "DFD_STUDIO_MAX_SCAN", d.max_scan),
        )

    def check_run(self, config, name=lambda field: field) -> None:
        """Raise ValueError naming the first setting of a DistillConfig over these bounds (as the form calls it)."""

        def over(field: str, value, limit, env: str, what: str = "at most") -> ValueError:
            return ValueError(
                f"{name(field)} {value} is more than this public studio allows: {what} {limit} (the "
                f"owner can change it with {env})"
            )

        if config.steps > self.max_steps:
            raise over("steps", config.steps, self.max_steps, "DFD_STUDIO_MAX_STEPS")
        clips = config.batch_size * config.grad_accum
        if clips > self.max_batch:
            shown = f"{config.batch_size}" + (f" x grad_accum {config.grad_accum}" if config.grad_accum > 1 else "")
            raise over("batch_size", shown, self.max_batch, "DFD_STUDIO_MAX_BATCH", "at most clips per update")
        if config.num_frames is not None and config.num_frames > self.max_frames:
            raise over("num_frames", config.num_frames, self.max_frames, "DFD_STUDIO_MAX_FRAMES")
        for field in ("height", "width"):
            value = getattr(config, field)
            if value is not None and value > self.max_side:
                raise over(field, value, self.max_side, "DFD_STUDIO_MAX_SIDE")
        for field in ("checkpoint_every", "preview_every"):
            value = getattr(config, field)
            if value and value < self.min_interval:  # preview_every 0: at the end only
                raise ValueError(
                    f"{name(field)} {value} is more often than this public studio allows: every "
                    f"{self.min_interval} steps at most often{', or 0' * (field == 'preview_every')} (the "
                    "owner can change it with DFD_STUDIO_MIN_INTERVAL)"
                )
        if config.log_with != "none" and config.log_with not in self.trackers:
            allowed = ", ".join(("none", *self.trackers))
            raise ValueError(
                f"{name('log_with')} {config.log_with} is off on this public studio (a tracker logs to "
                f"the owner's account): choose {allowed}; the owner can allow one with "
                "DFD_STUDIO_TRACKERS"
            )

    def check_frames(self, count: int | None, field: str = "Video frames") -> None:
        """Raise ValueError when a sample request (Compare's Video frames) asks for longer clips than a run may
        train on here; None (the model's own length) passes."""
        if count is not None and count > self.max_frames:
            raise ValueError(
                f"{field} {count} is more than this public studio allows: at most {self.max_frames} (the owner can "
                "change it with DFD_STUDIO_MAX_FRAMES)"
            )

    def check_repeats(self, spec) -> None:
        """Raise ValueError when a data-set config (engine.check_data_spec's DataSpec) repeats a folder too often."""
        for i, folder in enumerate(getattr(spec, "folders", ()) or ()):
            if folder.repeats > self.max_repeats:
                raise ValueError(
                    f"{spec.source}: folders[{i}].repeats {folder.repeats} is more than this public "
                    f"studio allows: at most {self.max_repeats} (the owner can change it with "
                    "DFD_STUDIO_MAX_REPEATS)"
                )

    def check_queue(self, data_dir: str | Path, jobs: int = 1) -> None:
        """Raise ValueError when the queue cannot take `jobs` more (one request's sample jobs go in together or
        not at all): the queue of a shared machine holds at most max_queued waiting jobs."""
        waiting = len(engine.jobs.list_jobs(data_dir, states=["queued"], limit=self.max_queued + 1))
        if waiting >= self.max_queued:
            held = f"{waiting} jobs are" if waiting != 1 else "1 job is"
            raise ValueError(
                f"{held} already waiting in this public studio's queue, the most it "
                "holds; launch again when one has started (the owner can change it with "
                "DFD_STUDIO_MAX_QUEUED)"
            )
        if waiting + jobs > self.max_queued:
            raise ValueError(
                f"this request queues {jobs} jobs and {waiting} already wait in this public studio's queue, which "
                f"holds at most {self.max_queued}; ask for fewer at once, or again when some have started (the "
                "owner can change it with DFD_STUDIO_MAX_QUEUED)"
            )


def check_free_disk(data_dir: str | Path, what: str = "a job", environ=None) -> None:
    """Raise ValueError when the data folder's disk has less free than DFD_STUDIO_MIN_FREE_MB: a job that starts
    there would fail half-way writing its checkpoints (the worker checks again when the job starts)."""
    engine.jobs.check_free_disk(data_dir, f"{what} cannot start now", "try again later", environ)
