"""What the browser keeps of Compare's and Diversity's last request (one gr.BrowserState per tab), so that a
reload shows the same settings and result again, read from the cache, or goes on waiting for the request's
sample jobs."""

from __future__ import annotations

from collections.abc import Callable

from engine import ModelError


def remembered(job_ids: list[str] | None, request) -> dict:
    """The last request as the browser keeps it (JSON): the request as the job path replans it (the stored
    first frame, not the upload) and its sample jobs, if any."""
    return {"request": list(request), "job_ids": list(job_ids) if job_ids else None}


def recall(last, size: int, replan: Callable) -> tuple[list, object, list[str] | None] | None:
    """(the request, its plan, its sample jobs' ids or None) of a remembered request whose result is cached or
    whose jobs were queued; None when nothing is remembered or the request is no longer valid (a student
    gone, a base refused: the page then opens as it does the first time)."""
    request = last.get("request") if isinstance(last, dict) else None
    if not isinstance(request, list) or len(request) != size:
        return None
    try:
        p = replan(*request)
    except (ValueError, ModelError, TypeError):
        return None
    job_ids = [str(i) for i in last.get("job_ids") or []] or None
    return (request, p, job_ids) if (p.folder / "meta.json").is_file() or job_ids else None


def waiting(job_ids: list[str]) -> str:
    return f"Waiting for sample jobs {', '.join(job_ids)} (this page's last request)."
