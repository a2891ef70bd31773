"""The database schema as ordered upgrade steps. A new database runs every step; an older one runs the
steps it has not seen. Each applied step is a row of `schema_version`, so the file says what it is.

Rules for adding a step: append it with the next version number; never edit a step that has shipped;
keep data (copy, backfill), never drop it silently; mirror the change in models.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    statements: tuple[str, ...]


STEPS: tuple[Step, ...] = (
    Step(
        1,
        "jobs, checkpoints, artifacts, metric points",
        (
            """CREATE TABLE jobs (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                config TEXT NOT NULL,
                state TEXT NOT NULL,
                step INTEGER NOT NULL DEFAULT 0,
                total INTEGER,
                loss_terms TEXT,
                created_at REAL NOT NULL,
                queued_at REAL NOT NULL,
                started_at REAL,
                finished_at REAL,
                heartbeat_at REAL,
                pid INTEGER,
                error TEXT,
                parent_id TEXT REFERENCES jobs(id),
                cancel_requested_at REAL
            )""",
            "CREATE INDEX ix_jobs_state_queued_at ON jobs (state, queued_at)",
            """CREATE TABLE checkpoints (
                id INTEGER PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                step INTEGER NOT NULL,
                path TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX ix_checkpoints_job_step ON checkpoints (job_id, step)",
            """CREATE TABLE artifacts (
                id INTEGER PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                path TEXT NOT NULL,
                label TEXT,
                created_at REAL NOT NULL
            )""",
            "CREATE INDEX ix_artifacts_job ON artifacts (job_id)",
            """CREATE TABLE metric_points (
                id INTEGER PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                step INTEGER NOT NULL,
                name TEXT NOT NULL,
                value REAL NOT NULL,
                time REAL NOT NULL
            )""",
            "CREATE INDEX ix_metric_points_job_name_step ON metric_points (job_id, name, step)",
        ),
    ),
    Step(
        2,
        "history of state changes (job_events), backfilled with each job's current state",
        (
            """CREATE TABLE job_events (
                id INTEGER PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                from_state TEXT,
                to_state TEXT NOT NULL,
                reason TEXT,
                at REAL NOT NULL
            )""",
            "CREATE INDEX ix_job_events_job ON job_events (job_id, id)",
            # Jobs from before the history existed get one event: the state they are in now.
            """INSERT INTO job_events (job_id, from_state, to_state, reason, at)
               SELECT id, NULL, state, 'state when the history was added',
                      COALESCE(finished_at, started_at, queued_at) FROM jobs""",
        ),
    ),
    Step(
        3,
        "who submitted each job (jobs.submitted_by); older jobs have none, so only the studio's owner acts on them",
        ("ALTER TABLE jobs ADD COLUMN submitted_by TEXT",),
    ),
    Step(
        4,
        "where each job runs (jobs.target: local, or hf-jobs) and a remote job's handle on the Hub (jobs.remote); "
        "older jobs ran on the local worker",
        (
            "ALTER TABLE jobs ADD COLUMN target TEXT NOT NULL DEFAULT 'local'",
            "ALTER TABLE jobs ADD COLUMN remote TEXT",
        ),
    ),
)
LATEST_VERSION = STEPS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer DFD Studio than this one."""


def current_version(connection: Connection) -> int:
    """The highest applied step of the database on `connection` (0 for an empty file)."""
    has_table = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).first()
    if not has_table:
        return 0
    return connection.exec_driver_sql("SELECT COALESCE(MAX(version), 0) FROM schema_version").scalar_one()


def upgrade(write_engine: Engine, steps: tuple[Step, ...] = STEPS, target: int | None = None) -> tuple[int, int]:
    """Apply the missing steps up to `target` (default: all) in one write transaction.

    Returns (version before, version after). Two processes opening a new file at once are safe: the
    transaction takes the write lock first, so the second one sees the first one's result."""
    target = steps[-1].version if target is None else target
    with write_engine.begin() as connection:
        before = current_version(connection)
        if before > steps[-1].version:
            raise SchemaTooNew(
                f"the studio database is at schema version {before} but this DFD Studio knows only up to "
                f"{steps[-1].version}; update DFD Studio or use another data dir"
            )
        connection.exec_driver_sql(_VERSION_TABLE)
        for step in steps:
            if before < step.version <= target:
                for statement in step.statements:
                    connection.exec_driver_sql(statement)
                connection.exec_driver_sql(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.description, time.time()),
                )
        return before, max(before, min(target, steps[-1].version))
