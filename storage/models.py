"""ORM mapping of the tables that schema.py creates. schema.py is the source of truth for the file;
these classes say how Python reads and writes it (tests check that the two agree).

Times are Unix seconds (REAL): cheap to compare across processes, e.g. for stale heartbeats."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    config: Mapped[dict] = mapped_column(JSON)  # the kind's config dataclass as a dict
    state: Mapped[str] = mapped_column(String)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    loss_terms: Mapped[dict | None] = mapped_column(JSON)  # the latest reported value of each loss term
    created_at: Mapped[float] = mapped_column(Float)
    queued_at: Mapped[float] = mapped_column(Float)  # last (re)queue: the worker takes the oldest first
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[float | None] = mapped_column(Float)
    pid: Mapped[int | None] = mapped_column(Integer)  # the job process while running
    error: Mapped[str | None] = mapped_column(Text)  # one readable sentence when failed or interrupted
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    cancel_requested_at: Mapped[float | None] = mapped_column(Float)
    submitted_by: Mapped[str | None] = mapped_column(String)  # the visitor's name; None: the owner or unknown
    target: Mapped[str] = mapped_column(String, default="local")  # local: the worker runs it; hf-jobs: the Hub
    remote: Mapped[dict | None] = mapped_column(JSON)  # a remote job's handle: its id, namespace, flavor, ...


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String)  # relative to the job folder when inside it
    created_at: Mapped[float] = mapped_column(Float)


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String)  # lora, video, grid, metrics, ...
    path: Mapped[str] = mapped_column(String)  # relative to the job folder when inside it
    label: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Float)


class MetricPointRow(Base):
    __tablename__ = "metric_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[float] = mapped_column(Float)


class JobEventRow(Base):
    """One committed state change of a job: the history behind `jobs.state`."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    from_state: Mapped[str | None] = mapped_column(String)
    to_state: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float)
