"""What the Jobs tab says about a job that runs on HF Jobs, from its row's remote handle (written by
engine.hf_tracker): the HF Job's id linked to its page on huggingface.co, the Hub's stage from inspect_job, the
flavor and its price per hour, the time limit, how long it has run and about what it has cost so far."""

from __future__ import annotations

import time

import engine

from .job_text import duration, plain

HUB_STAGES = {  # the Hub's stage, as a person reads it
    "SCHEDULING": "waiting for a GPU",
    "RUNNING": "running",
    "COMPLETED": "completed",
    "ERROR": "ended with an error",
    "CANCELED": "cancelled",
    "DELETED": "deleted",
}


def remote_line(job, now: float | None = None) -> str | None:
    """The HF Job lines of the job's header; None for a job of this machine's worker."""
    remote = job.remote or {}
    if job.target != "hf-jobs" or not remote:
        return None
    now = time.time() if now is None else now
    namespace = plain(remote.get("namespace", "?"))
    if not remote.get("id"):
        return f"HF Jobs · {plain(remote.get('flavor', '?'))} under {namespace} · being started"
    job_id = plain(remote["id"])
    stage = remote.get("stage")
    said = HUB_STAGES.get(stage, plain(stage).lower()) if stage else "no answer from the Hub yet"
    if remote.get("message"):
        said += f" ({plain(remote['message'])})"
    per_hour = float(remote.get("usd_per_hour") or 0.0)
    started = remote.get("started_at") or job.started_at
    ran = ((remote.get("ended_at") or now) - started) if started else None
    spent = engine.hf_tracker.spent_usd({**remote, "started_at": started}, now)
    lines = [
        f"HF Job [{job_id}]({engine.hf_jobs.job_url(remote.get('namespace', ''), remote['id'])}) under "
        f"{namespace} · Hub: {said}",
        f"{plain(remote.get('flavor', '?'))} at ${per_hour:.2f}/h · time limit "
        f"{duration(remote.get('timeout'))} · ran {duration(ran)} · about ${spent:.2f} so far "
        "(price x time since it started; billed to that account)",
    ]
    if remote.get("earlier"):
        earlier = remote["earlier"]
        lines[-1] += f" · continues HF Job{'s' * (len(earlier) > 1)} {', '.join(map(plain, earlier))}"
    if remote.get("waiting"):
        lines.append(f"Resumed: it starts on HF Jobs once {namespace} opens the studio signed in.")
    return "\n\n".join(lines)
