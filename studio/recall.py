"""What the browser keeps of Compare's, Diversity's and Publish's last request (in its localStorage, one key per
tab), so that a reload shows the same settings and result again, read from the cache, or goes on waiting for
the request's sample jobs.

Kept by a hidden box and a line of browser code rather than gr.BrowserState, whose stored value reaches
Python only after the page's load events have run."""

from __future__ import annotations

import json
from collections.abc import Callable

from engine import ModelError


def keeper(tab: str):
    """(a hidden box holding the tab's last request, the code a page-load event runs first): the box's
    value is copied into localStorage whenever it changes; the code hands the stored copy to Python as the
    event's first input (the box)."""
    import gradio as gr

    key = f"dfd-studio-{tab}-last"
    box = gr.Textbox(visible=False, elem_id=f"{tab}-last")
    box.change(None, [box], None, js=f"(v) => {{ if (v) window.localStorage.setItem('{key}', v); }}")
    return box, f"(...args) => [window.localStorage.getItem('{key}'), ...args.slice(1)]"


def remembered(job_ids: list[str] | None, request) -> str:
    """The last request as the browser keeps it (JSON): the request as the job path replans it (the stored
    first frame, not the upload) and its sample jobs, if any."""
    return json.dumps({"request": list(request), "job_ids": list(job_ids) if job_ids else None})


def recall(last, size: int, replan: Callable) -> tuple[list, object, list[str] | None] | None:
    """(the request, its plan, its sample jobs' ids or None) of a remembered request whose result is cached or
    whose jobs were queued; None when nothing is remembered or the request is no longer valid (a student
    gone, a base refused: the page then opens as it does the first time)."""
    try:
        last = json.loads(last) if isinstance(last, str) else last
    except ValueError:
        return None
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
