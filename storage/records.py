"""Plain, read-only views of stored rows. Callers (engine, studio) get these, never ORM objects, so a
value read stays valid after its session closes and cannot be written back by accident."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .layout import DataDir
from .models import ArtifactRow, CheckpointRow, JobEventRow, JobRow, MetricPointRow


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: str
    config: dict
    step: int
    total: int | None
    loss_terms: dict
    created_at: float
    queued_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    pid: int | None
    error: str | None
    parent_id: str | None
    cancel_requested: bool
    dir: Path
    submitted_by: str | None = None  # who queued it (a login name); None for the owner's tools and older jobs
    target: str = "local"  # local: the worker's process runs it; hf-jobs: an HF Job on the Hub does
    remote: dict | None = None  # an HF Job's handle (id, namespace, flavor, timeout, price), None for local jobs

    def to_dict(self) -> dict:
        """JSON-ready dict (the job folder as a string)."""
        data = asdict(self)
        data["dir"] = str(self.dir)
        return data


@dataclass(frozen=True)
class Checkpoint:
    job_id: str
    step: int
    path: Path
    created_at: float


@dataclass(frozen=True)
class Artifact:
    job_id: str
    kind: str
    path: Path
    label: str | None
    created_at: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


@dataclass(frozen=True)
class MetricPoint:
    job_id: str
    step: int
    name: str
    value: float
    time: float
    id: int = 0  # grows with every point stored: a reader asks for the points after the last id it holds


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    from_state: str | None
    to_state: str
    reason: str | None
    at: float


def job_from_row(row: JobRow, layout: DataDir) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        state=row.state,
        config=dict(row.config or {}),
        step=row.step,
        total=row.total,
        loss_terms=dict(row.loss_terms or {}),
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        pid=row.pid,
        error=row.error,
        parent_id=row.parent_id,
        cancel_requested=row.cancel_requested_at is not None,
        dir=layout.job_dir(row.id),
        submitted_by=row.submitted_by,
        target=row.target or "local",
        remote=dict(row.remote) if row.remote else None,
    )


def stored_path(path: str | Path, job_dir: Path) -> str:
    """How a file path is stored: relative to the job folder when inside it (the data dir can move)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(job_dir.resolve()))
    except ValueError:
        return str(path)


def checkpoint_from_row(row: CheckpointRow, layout: DataDir) -> Checkpoint:
    return Checkpoint(row.job_id, row.step, layout.job_dir(row.job_id) / row.path, row.created_at)


def artifact_from_row(row: ArtifactRow, layout: DataDir) -> Artifact:
    return Artifact(row.job_id, row.kind, layout.job_dir(row.job_id) / row.path, row.label, row.created_at)


def metric_point_from_row(row: MetricPointRow) -> MetricPoint:
    return MetricPoint(row.job_id, row.step, row.name, row.value, row.time, row.id)


def event_from_row(row: JobEventRow) -> JobEvent:
    return JobEvent(row.job_id, row.from_state, row.to_state, row.reason, row.at)
