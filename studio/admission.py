"""Whether a visitor may queue more jobs now: their cap on active jobs (studio/identity.py), the public queue's
cap (studio/limits.py) and the free disk. The paths that queue work beside Distill's Launch pass here: the
sample jobs of Compare and Diversity, and Resume in the Jobs tab (docs/security.md, "Limits"). A job records
who queued it (submitter_of): in an open studio those who did not sign in are ANONYMOUS, one visitor for the
cap, apart from the owner's command-line jobs, which record no submitter."""

from __future__ import annotations

from pathlib import Path

import engine.jobs as jobs_api

from .access import Access
from .identity import Identity
from .limits import check_free_disk

# The submitter recorded for the jobs of visitors who did not sign in to a public studio (DFD_STUDIO_OPEN=1): no
# Hugging Face name has parentheses, so no visitor signed in there shares it, and it is not None, so their jobs
# are not counted with the owner's command-line ones (no submitter).
ANONYMOUS = "(anonymous)"


def submitter_of(identity: Identity, visitor: str | None) -> str | None:
    """Who a job `visitor` queues is recorded as (jobs.submitted_by): their signed-in name; nobody signed in to a
    public studio, ANONYMOUS; nobody signed in to a local studio (the owner), None."""
    if visitor:
        return visitor
    return ANONYMOUS if identity.public else None


def active_jobs_of(data_dir: str | Path, submitter: str | None) -> int:
    """How many jobs recorded as `submitter`'s (submitter_of) are queued or running: ANONYMOUS counts every
    anonymous visitor's together, None the owner's command-line jobs."""
    active = jobs_api.list_jobs(data_dir, ["queued", "running"], limit=10_000)
    return sum(1 for job in active if (job.submitted_by or None) == (submitter or None))


def check_room(
    data_dir: str | Path, access: Access, identity: Identity, visitor: str | None, jobs: int = 1, what: str = "the job"
) -> None:
    """Raise ValueError, naming the limit and who may change it, when `visitor` may not queue `jobs` more jobs
    now: they already have their cap of active jobs (one request's jobs are let in while they are under it), the
    public queue cannot take `jobs` more, or the disk is short."""
    identity.check_active(visitor, active_jobs_of(data_dir, submitter_of(identity, visitor)))
    access.check_queue(data_dir, jobs)
    check_free_disk(data_dir, what)
