"""Reconciling jobs whose process is gone: a row left `running` by a dead process (killed, out of memory,
machine restarted) becomes `interrupted` with a readable reason, so it is never silently lost and can be
resumed from its newest checkpoint."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from sqlalchemy import select

from . import jobs
from .db import Database
from .models import JobRow
from .records import Job, job_from_row
from .states import INTERRUPTED, LOCAL, RUNNING

STALE_AFTER_S = 30.0


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this machine (a zombie counts as alive)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _why_gone(row: JobRow, now: float, stale_after: float, is_alive: Callable[[int | None], bool]) -> str | None:
    """Why this running job's process counts as gone, or None if it looks alive."""
    heartbeat_age = now - (row.heartbeat_at or row.started_at or now)
    if row.pid is not None and not is_alive(row.pid):
        return f"the job process (pid {row.pid}) is gone"
    if heartbeat_age > stale_after:
        return f"the job process sent no heartbeat for {heartbeat_age:.0f} s"
    return None


def reconcile(
    db: Database, stale_after: float = STALE_AFTER_S, is_alive: Callable[[int | None], bool] = pid_alive
) -> list[Job]:
    """Make `interrupted` every running job whose pid is dead or whose heartbeat is older than
    `stale_after` seconds. Returns the jobs changed. Safe to run from several processes at once. Only local
    jobs: a remote one has no process here, and its tracker asks the Hub how it is."""
    with db.read() as session:
        candidates = list(session.scalars(select(JobRow.id).where(JobRow.state == RUNNING, JobRow.target == LOCAL)))
    changed = []
    for job_id in candidates:
        with db.write() as session:  # check and change under the write lock: it may have finished meanwhile
            row = session.get(JobRow, job_id)
            if row is None or row.state != RUNNING:
                continue
            why = _why_gone(row, time.time(), stale_after, is_alive)
            if why is None:
                continue
            step = jobs.latest_checkpoint_step(session, job_id)
            jobs.apply_transition(session, row, INTERRUPTED, error=f"{why}; resume to continue from step {step}")
            session.flush()
            changed.append(job_from_row(row, db.layout))
    return changed
