"""Who is asking, and may they act on a job: the owner is trusted, visitors act only on their own jobs.

The owner is DFD_STUDIO_OWNER, else the Space's author (SPACE_AUTHOR_NAME, set by Hugging Face on a Space).
On a local studio (only this machine reaches it) whoever uses it is the owner. A visitor is known by the
name they signed in with (gradio's request.username, from the password login or the Hugging Face gate, or
the Sign in with Hugging Face profile); with no login (DFD_STUDIO_OPEN=1) visitors are anonymous and may
act on no job: they can queue work but neither cancel, resume nor publish anyone's, their own included.

Jobs record who submitted them (jobs.submitted_by); one with no submitter (the owner's command line, or
queued before submitters were recorded) is the owner's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ACTIVE_JOBS_PER_VISITOR = 2  # queued or running at once; DFD_STUDIO_MAX_ACTIVE_JOBS overrides (0: no cap)


@dataclass(frozen=True)
class Identity:
    public: bool
    owner: str | None  # lower-case name; None: no owner is named (then only a local studio has one)
    max_active_jobs: int = ACTIVE_JOBS_PER_VISITOR

    def is_owner(self, visitor: str | None) -> bool:
        if not self.public:
            return True
        return bool(visitor and self.owner and visitor.lower() == self.owner)

    def may_act(self, visitor: str | None, submitted_by: str | None) -> bool:
        """May `visitor` cancel, resume or publish a job queued by `submitted_by`."""
        if self.is_owner(visitor):
            return True
        return bool(visitor and submitted_by and visitor.lower() == submitted_by.lower())

    def check_may_act(self, visitor: str | None, job, what: str) -> None:
        """Raise PermissionError, saying why, when `visitor` may not `what` (cancel, resume, publish) `job`."""
        if self.may_act(visitor, job.submitted_by):
            return
        if not visitor:
            raise PermissionError(
                f"cannot {what} job {job.id}: this studio has no login, so nobody can be told "
                "apart from anyone else; only the studio's owner may, from the command line"
            )
        raise PermissionError(
            f"cannot {what} job {job.id}: it was queued by someone else; only its submitter or the studio's owner may"
        )

    def check_active(self, visitor: str | None, active_of_visitor: int) -> None:
        """Raise ValueError when a visitor already has as many active jobs as the cap allows."""
        if self.is_owner(visitor) or self.max_active_jobs <= 0 or active_of_visitor < self.max_active_jobs:
            return
        change = "the owner can change it with DFD_STUDIO_MAX_ACTIVE_JOBS"
        jobs = f"{active_of_visitor} job{'s' * (active_of_visitor != 1)}"
        if not visitor:
            raise ValueError(
                f"visitors who have not signed in already have {jobs} queued or running together, the most this "
                f"studio allows them at once ({self.max_active_jobs}); wait for one to finish ({change})"
            )
        raise ValueError(
            f"you already have {jobs} queued or running, the most this studio allows a visitor at once "
            f"({self.max_active_jobs}); wait for one to finish or cancel one ({change})"
        )


def identity_from_env(public: bool, environ=None) -> Identity:
    environ = os.environ if environ is None else environ
    owner = (environ.get("DFD_STUDIO_OWNER") or environ.get("SPACE_AUTHOR_NAME") or "").strip().lower() or None
    raw = environ.get("DFD_STUDIO_MAX_ACTIVE_JOBS", "").strip()
    try:
        cap = int(raw) if raw else ACTIVE_JOBS_PER_VISITOR
    except ValueError:
        raise ValueError(f"DFD_STUDIO_MAX_ACTIVE_JOBS must be a whole number (0: no cap), not {raw!r}") from None
    return Identity(public, owner, cap)


def visitor_of(request) -> str | None:
    """The signed-in name of a gradio request: the login's user name, else the Sign in with Hugging Face
    profile; None when nobody is signed in (or outside a request)."""
    if request is None:
        return None
    if getattr(request, "username", None):
        return request.username
    inner = getattr(request, "request", None)
    scope = getattr(inner, "scope", None) or {}
    if "session" in scope:
        info = inner.session.get("oauth_info") or {}
        return (info.get("userinfo") or {}).get("preferred_username") or None
    return None


LOCAL_OWNER = Identity(False, None)  # a studio only this machine reaches: whoever uses it is the owner
