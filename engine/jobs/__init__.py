"""The job system's public API for the studio and the command line: submit work, watch it, cancel and
resume it, read what it produced. Jobs run in a worker process (`python -m engine worker`); everything
here only reads and writes storage and checks configs, so it is quick and never imports torch.

    job = engine.jobs.submit("studio_data", "sample", {"prompt": "a red circle moving left", "seeds": [1, 2]})
    engine.jobs.get("studio_data", job.id).state   # queued -> running -> succeeded
"""

from __future__ import annotations

import os
from pathlib import Path

import storage
from storage import Artifact, Checkpoint, IllegalTransition, Job, JobEvent, JobNotFound, MetricPoint
from storage.states import QUEUED

from .disk import check_free_disk
from .kinds import JobKind, UnknownKind, build_config, get_kind, kind_names, register
from .reporter import JobCancelled, JobFailed, Reporter

DataDirArg = str | os.PathLike | None  # None: $DFD_STUDIO_DATA, else ./studio_data

__all__ = [
    "Artifact",
    "Checkpoint",
    "IllegalTransition",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobKind",
    "JobNotFound",
    "MetricPoint",
    "Reporter",
    "UnknownKind",
    "artifacts",
    "cancel",
    "check_free_disk",
    "checkpoints",
    "events",
    "get",
    "get_kind",
    "kind_names",
    "list_jobs",
    "log_tail",
    "metrics",
    "reconcile",
    "register",
    "resume",
    "submit",
]


def submit(data_dir: DataDirArg, kind: str, config, parent: str | None = None, submitted_by: str | None = None) -> Job:
    """Queue a job with its config: a dict of settings, built into the kind's config and validated here, or
    the kind's config object already built and validated by its caller (the Distill form and `jobs submit`
    build theirs with build_distill_config), stored as it is. Raises ValueError (unknown kind, unknown or bad
    setting) before anything is written; JobNotFound if `parent` does not exist.
    `submitted_by`: the signed-in visitor who queued it (None: the owner), who may then cancel and resume it."""
    job_kind = get_kind(kind)
    built = config if isinstance(config, job_kind.load_config_class()) else build_config(job_kind, config)
    return storage.jobs.create_job(
        storage.open_database(data_dir), kind, built.to_dict(), parent_id=parent, submitted_by=submitted_by
    )


def list_jobs(data_dir: DataDirArg, states: list[str] | None = None, limit: int = 100) -> list[Job]:
    """Jobs, newest first, optionally only those in the given states."""
    return storage.jobs.list_jobs(storage.open_database(data_dir), states, limit)


def get(data_dir: DataDirArg, job_id: str) -> Job:
    """One job; raises JobNotFound."""
    return storage.jobs.get_job(storage.open_database(data_dir), job_id)


def cancel(data_dir: DataDirArg, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one stops at its next progress report, or is stopped
    by the worker within 10 s. Raises IllegalTransition for a job that is not queued or running."""
    return storage.jobs.request_cancel(storage.open_database(data_dir), job_id)


def resume(data_dir: DataDirArg, job_id: str) -> Job:
    """Queue an interrupted, cancelled or failed job again; it continues from its newest checkpoint."""
    return storage.jobs.transition(
        storage.open_database(data_dir),
        job_id,
        QUEUED,
        reason="resumed",
        hint="only an interrupted, cancelled or failed job can be resumed",
    )


def artifacts(data_dir: DataDirArg, job_id: str, kind: str | None = None) -> list[Artifact]:
    """The job's result files (absolute paths), in the order they were recorded."""
    db = storage.open_database(data_dir)
    storage.jobs.get_job(db, job_id)
    return storage.outputs.list_artifacts(db, job_id, kind)


def checkpoints(data_dir: DataDirArg, job_id: str) -> list[Checkpoint]:
    """The job's recorded checkpoints, oldest first."""
    db = storage.open_database(data_dir)
    storage.jobs.get_job(db, job_id)
    return storage.outputs.list_checkpoints(db, job_id)


def metrics(
    data_dir: DataDirArg, job_id: str, names: list[str] | None = None, after_id: int | None = None
) -> list[MetricPoint]:
    """The job's metric points (loss terms per step), ordered by step, optionally only the named ones and
    only those stored after the point with id `after_id` (each point has an id that grows as they are stored)."""
    db = storage.open_database(data_dir)
    storage.jobs.get_job(db, job_id)
    return storage.outputs.metric_points(db, job_id, names, after_id)


def events(data_dir: DataDirArg, job_id: str) -> list[JobEvent]:
    """The job's state changes, oldest first."""
    return storage.jobs.job_events(storage.open_database(data_dir), job_id)


def log_tail(data_dir: DataDirArg, job_id: str, lines: int = 50) -> str:
    """The last `lines` lines of the job's log.txt ("" before the job has started)."""
    db = storage.open_database(data_dir)
    storage.jobs.get_job(db, job_id)
    return _tail(db.layout.log_path(job_id), lines)


def reconcile(data_dir: DataDirArg) -> list[Job]:
    """Mark jobs left `running` by dead processes as interrupted (call when the studio starts)."""
    return storage.recovery.reconcile(storage.open_database(data_dir))


def _tail(path: Path, lines: int, chunk: int = 64 * 1024) -> str:
    """The last lines of a file, reading only its end (training logs grow large)."""
    if lines <= 0 or not path.exists():
        return ""
    with open(path, "rb") as log:
        log.seek(0, os.SEEK_END)
        end = position = log.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - chunk)
            log.seek(position)
            data = log.read(end - position)
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
