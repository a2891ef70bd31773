"""Whether a visitor may queue more jobs now: their cap on active jobs (studio/identity.py), the public queue's
cap (studio/limits.py) and the free disk. The paths that queue work beside Distill's Launch pass here: the
sample jobs of Compare and Diversity, and Resume in the Jobs tab (docs/security.md, "Limits")."""

from __future__ import annotations

from pathlib import Path

import engine.jobs as jobs_api

from .access import Access
from .identity import Identity
from .limits import check_free_disk


def active_jobs_of(data_dir: str | Path, visitor: str | None) -> int:
    """How many jobs `visitor` has queued or running (anonymous visitors count together)."""
    active = jobs_api.list_jobs(data_dir, ["queued", "running"], limit=10_000)
    return sum(1 for job in active if (job.submitted_by or None) == (visitor or None))


def check_room(
    data_dir: str | Path, access: Access, identity: Identity, visitor: str | None, jobs: int = 1, what: str = "the job"
) -> None:
    """Raise ValueError, naming the limit and who may change it, when `visitor` may not queue `jobs` more jobs
    now: they already have their cap of active jobs (one request's jobs are let in while they are under it), the
    public queue cannot take `jobs` more, or the disk is short."""
    identity.check_active(visitor, active_jobs_of(data_dir, visitor))
    access.check_queue(data_dir, jobs)
    check_free_disk(data_dir, what)
