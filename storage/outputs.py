"""What a running job produces: progress (step, loss terms, heartbeat, metric points), checkpoints and
artifacts; and the reads the studio makes of them."""

from __future__ import annotations

import math
import time
from pathlib import Path

from sqlalchemy import delete, select

from .db import Database
from .errors import JobNotFound, JobNotRunning
from .models import ArtifactRow, CheckpointRow, JobRow, MetricPointRow
from .records import (
    Artifact,
    Checkpoint,
    MetricPoint,
    artifact_from_row,
    checkpoint_from_row,
    stored_path,
)
from .states import RUNNING


def _running_row(session, db: Database, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise JobNotFound(job_id, db.layout.root)
    if row.state != RUNNING:
        raise JobNotRunning(job_id, row.state)
    return row


def record_progress(db: Database, job_id: str, step: int, total: int | None, loss_terms: dict[str, float]) -> bool:
    """Store the latest step, total and latest value of each loss term, one metric point per term, and a heartbeat,
    in one transaction. Returns whether a cancel was requested. Raises JobNotRunning if the job left `running`."""
    bad = {name: value for name, value in loss_terms.items() if not math.isfinite(value)}
    if bad:  # SQLite would store NaN as NULL; the caller (the reporter) turns this into a failed job
        raise ValueError(f"non-finite loss terms at step {step}: {bad}")
    now = time.time()
    with db.write() as session:
        row = _running_row(session, db, job_id)
        row.step, row.heartbeat_at = step, now
        if total is not None:
            row.total = total
        # Terms can come on different steps (the fake score's and the student's alternate): keep the
        # latest value of each.
        row.loss_terms = {**(row.loss_terms or {}), **loss_terms}
        session.add_all(
            MetricPointRow(job_id=job_id, step=step, name=name, value=float(value), time=now)
            for name, value in loss_terms.items()
        )
        return row.cancel_requested_at is not None


def record_heartbeat(db: Database, job_id: str) -> bool:
    """Mark the job's process alive now. Returns whether a cancel was requested; raises JobNotRunning."""
    with db.write() as session:
        row = _running_row(session, db, job_id)
        row.heartbeat_at = time.time()
        return row.cancel_requested_at is not None


def add_checkpoint(db: Database, job_id: str, step: int, path: str | Path) -> Checkpoint:
    """Record a complete checkpoint (the file or folder must exist: write it atomically first)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; record a checkpoint after writing it")
    with db.write() as session:
        _running_row(session, db, job_id)
        row = CheckpointRow(
            job_id=job_id, step=step, path=stored_path(path, db.layout.job_dir(job_id)), created_at=time.time()
        )
        session.add(row)
        session.flush()
        return checkpoint_from_row(row, db.layout)


def list_checkpoints(db: Database, job_id: str) -> list[Checkpoint]:
    """The job's recorded checkpoints, oldest step first."""
    query = select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step, CheckpointRow.id)
    with db.read() as session:
        return [checkpoint_from_row(row, db.layout) for row in session.scalars(query)]


def latest_checkpoint(db: Database, job_id: str) -> Checkpoint | None:
    """The job's newest recorded checkpoint (highest step), or None."""
    query = (
        select(CheckpointRow)
        .where(CheckpointRow.job_id == job_id)
        .order_by(CheckpointRow.step.desc(), CheckpointRow.id.desc())
        .limit(1)
    )
    with db.read() as session:
        row = session.scalars(query).first()
        return None if row is None else checkpoint_from_row(row, db.layout)


def add_artifact(db: Database, job_id: str, kind: str, path: str | Path, label: str | None = None) -> Artifact:
    """Record a result file of a running job (kind: lora, video, grid, metrics, ...)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"artifact {path} does not exist; record an artifact after writing it")
    with db.write() as session:
        _running_row(session, db, job_id)
        row = ArtifactRow(
            job_id=job_id,
            kind=kind,
            path=stored_path(path, db.layout.job_dir(job_id)),
            label=label,
            created_at=time.time(),
        )
        session.add(row)
        session.flush()
        return artifact_from_row(row, db.layout)


def list_artifacts(db: Database, job_id: str, kind: str | None = None) -> list[Artifact]:
    """The job's artifacts in the order they were recorded, optionally of one kind."""
    query = select(ArtifactRow).where(ArtifactRow.job_id == job_id).order_by(ArtifactRow.id)
    if kind is not None:
        query = query.where(ArtifactRow.kind == kind)
    with db.read() as session:
        return [artifact_from_row(row, db.layout) for row in session.scalars(query)]


def metric_points(
    db: Database, job_id: str, names: list[str] | None = None, after_id: int | None = None
) -> list[MetricPoint]:
    """The job's metric points ordered by step (then name), optionally only the named metrics, and only
    those stored after the point `after_id` (a page that polls asks for what is new, not for every point)."""
    row = MetricPointRow
    # Plain tuples, not ORM objects: a long run has some 200k points, and building rows costs ten times more.
    query = select(row.job_id, row.step, row.name, row.value, row.time, row.id).where(row.job_id == job_id)
    if after_id is not None:
        query = query.where(row.id > after_id)
    if names:
        query = query.where(row.name.in_(list(names)))
    query = query.order_by(row.step, row.name, row.id)
    with db.read() as session:
        return [MetricPoint(*values) for values in session.execute(query)]


def forget_metrics_after(db: Database, job_id: str, step: int) -> int:
    """Delete metric points past `step`: a resumed job repeats those steps from its checkpoint, and the
    plot should show the run that led to the final weights. Returns how many were deleted."""
    with db.write() as session:
        result = session.execute(
            delete(MetricPointRow).where(MetricPointRow.job_id == job_id, MetricPointRow.step > step)
        )
        return result.rowcount
