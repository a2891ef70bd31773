"""The job state machine: which state changes are allowed. Everything that changes a job's state goes
through `check_transition`, so an impossible change is an error, never a silent overwrite.

    queued -> running -> succeeded | failed | cancelled
    running -> interrupted          (the process died, the studio stopped, the heartbeat went stale)
    queued -> cancelled
    interrupted | cancelled | failed -> queued   (resume: continue from the newest checkpoint)
"""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"

STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)

# Where a job runs: LOCAL jobs are claimed by the data dir's worker; a remote one (an HF Job) is started and
# followed by its tracker, and the worker never claims or reconciles it.
LOCAL = "local"
HF_JOBS = "hf-jobs"
TARGETS = (LOCAL, HF_JOBS)

ALLOWED: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED}),
    INTERRUPTED: frozenset({QUEUED}),
    CANCELLED: frozenset({QUEUED}),
    # A failed job can be resumed too: "disk full while saving" or a crash is often fixed by the user,
    # and the newest checkpoint is still good.
    FAILED: frozenset({QUEUED}),
    SUCCEEDED: frozenset(),
}
RESUMABLE = frozenset(state for state, targets in ALLOWED.items() if QUEUED in targets)
ACTIVE = frozenset({QUEUED, RUNNING})


class IllegalTransition(ValueError):
    """A state change the state machine does not allow (e.g. a succeeded job made queued again)."""

    def __init__(self, job_id: str, from_state: str, to_state: str, hint: str = ""):
        allowed = ", ".join(sorted(ALLOWED.get(from_state, ()))) or "none, it is final"
        message = f"job {job_id} is {from_state} and cannot become {to_state} (allowed from {from_state}: {allowed})"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.job_id, self.from_state, self.to_state = job_id, from_state, to_state


def check_transition(job_id: str, from_state: str, to_state: str, hint: str = "") -> None:
    """Raise IllegalTransition unless `from_state -> to_state` is allowed."""
    if to_state not in STATES:
        raise ValueError(f"unknown job state {to_state!r}; the states are {', '.join(STATES)}")
    if to_state not in ALLOWED.get(from_state, frozenset()):
        raise IllegalTransition(job_id, from_state, to_state, hint)
