"""What the Jobs tab shows about one job, read from storage without gradio: its header (state, progress,
ETA, rate, error, the checkpoint a resumed run continues from, the data it trained on, how many student
updates used a real clip), its loss and diagnostic curves, its latest preview videos, its log tail, and
whether Cancel and Resume apply. Text from a job (its error, a prompt) is shown plain, never as Markdown."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import engine.jobs as jobs_api

from .files import expose
from .job_curves import EMPTY, curves, frame
from .job_remote import remote_line
from .job_text import duration, plain

LOSS_NAMES = ("loss_student", "loss_fake")
ACTIVE = ("queued", "running")  # what engine.jobs.cancel accepts
RESUMABLE = ("interrupted", "cancelled", "failed")  # what engine.jobs.resume accepts
PREVIEWS_SHOWN = 8


def fraction(job) -> float:
    if job.state == "succeeded":
        return 1.0
    return min(1.0, job.step / job.total) if job.total else 0.0


def eta(job, now: float | None = None) -> str:
    """Time left: the trainer's estimate, less the time since it was reported."""
    if job.state != "running":
        return "—"
    left = job.loss_terms.get("eta_s")
    if left is None:
        return "starting"
    reported = job.heartbeat_at or job.started_at or time.time()
    return duration(max(0.0, left - max(0.0, (now or time.time()) - reported)))


def describe(job) -> str:
    """What the job is, in a few words: 'dmd2 · shapes-tiny · 100 steps'."""
    c = job.config
    if job.kind == "distill":
        return f"{c.get('method', '?')} · {c.get('base', '?')} · {c.get('steps', '?')} steps"
    if job.kind == "sample":
        return f"sample · {c.get('prompt', '')[:40]} · {len(c.get('seeds', []))} seeds"
    return job.kind


@dataclass
class Detail:
    header: str
    losses: pd.DataFrame
    diagnostics: pd.DataFrame
    videos: list[tuple[str, str]]  # (public mp4, caption)
    log: str
    can_cancel: bool
    can_resume: bool
    signature: tuple  # changes when the plots or videos would
    held: dict | None = None  # the curves, for the next refresh to extend (see `curves`)


def detail(data_dir: Path, public_dir: Path, job_id: str | None, held: dict | None = None) -> Detail:
    """Everything the page shows about one job (preview videos are exposed in the public folder); `held`:
    the curves the page already has (see `curves`), so that only newer metric points are read."""
    if not job_id:
        return Detail("Pick a job above.", EMPTY, EMPTY, [], "", False, False, ())
    try:
        job = jobs_api.get(data_dir, job_id)
    except jobs_api.JobNotFound:
        return Detail(f"No job {plain(job_id)} in this data folder.", EMPTY, EMPTY, [], "", False, False, ())
    held = curves(data_dir, job, held)
    series = held["series"]
    losses = frame(series, [name for name in LOSS_NAMES if name in series])
    diagnostics = frame(series, sorted(name for name in series if name not in LOSS_NAMES))
    videos = jobs_api.artifacts(data_dir, job_id, "video")[-PREVIEWS_SHOWN:]
    shown = []
    for artifact in videos:
        if artifact.path.is_file():
            public = expose(artifact.path, public_dir, f"jobs/{job_id}/{artifact.path.name}")
            shown.append((str(public), artifact.label or artifact.path.name))
    header = _header(job, resumed_from(data_dir, job, held.get("newest")))
    real = real_clip_line(job, held.get("real_clips"))
    if real:
        header += "\n\n" + real
    log = jobs_api.log_tail(data_dir, job_id, lines=40)
    signature = (job.id, job.state, job.step, held["after"], tuple(p for p, _ in shown))
    return Detail(header, losses, diagnostics, shown, log, *allowed_actions(job), signature, held)


def allowed_actions(job) -> tuple[bool, bool]:
    """(may cancel, may resume): Cancel while queued or running and not already asked to stop; Resume
    only for a job the state machine lets go back to the queue."""
    return job.state in ACTIVE and not job.cancel_requested, job.state in RESUMABLE


def resumed_from(data_dir: Path, job, newest: float | None) -> int | None:
    """The checkpoint step a resumed job continues from, while it has reported no step since Resume (its row
    still holds the step it had reached, which the run repeats from the checkpoint); else None."""
    if job.state not in ACTIVE:
        return None
    resumes = [e.at for e in jobs_api.events(data_dir, job.id) if e.reason == "resumed"]
    if not resumes or (newest is not None and newest > resumes[-1]):
        return None
    kept = [c.step for c in jobs_api.checkpoints(data_dir, job.id) if Path(c.path).exists()]
    return kept[-1] if kept else 0


def _header(job, resumed: int | None = None) -> str:
    total = job.total if job.total is not None else "?"
    where = (
        f"step {job.step}/{total} · {round(100 * fraction(job))}% · ETA {eta(job)}"
        if resumed is None
        else f"resuming from the checkpoint at step {resumed}/{total} · ETA after its first new step"
    )
    lines = [
        f"### {job.id} · {plain(describe(job))}",
        f"**{job.state}**{' (cancel requested)' if job.cancel_requested and job.state == 'running' else ''} · " + where,
    ]
    rate = job.loss_terms.get("it_per_s") if resumed is None else None
    if rate:
        lines[-1] += f" · {rate:.2f} steps/s"
    if job.started_at:
        end = job.finished_at or time.time()
        lines[-1] += f" · ran {duration(end - job.started_at)}"
    if job.error:
        lines.append(f"> {plain(job.error)}")
    remote = remote_line(job)
    if remote:
        lines.append(remote)
    if job.parent_id:
        lines.append(f"Started from job `{job.parent_id}`.")
    data = data_line(Path(job.dir)) if job.dir else None
    if data:
        lines.append(data)
    return "\n\n".join(lines)


def real_clip_line(job, real_clips) -> str | None:
    """A DFD run's 'real clip used on k of n student updates' (from the trainer's data_forcing_used points):
    with a small data_forcing_prob and few updates, a run can use none and train as DMD2 continued."""
    if job.config.get("method") != "dfd" or not real_clips or not real_clips[1]:
        return None
    k, n = real_clips
    line = f"real clip used on {k} of {n} student update{'s' * (n != 1)}"
    if k:
        return line
    return line + (
        " (none yet: so far this run trains as DMD2 continued)"
        if job.state in ACTIVE
        else " (none: this run trained as DMD2 continued)"
    )


def data_line(job_dir: Path) -> str | None:
    """What a folder-data run trained on, from the data.json the trainer writes beside run.yaml: 'data: 120
    clips (3 skipped: see the log)'. None for the shapes world, or before the data is read."""
    try:
        report = json.loads((job_dir / "data.json").read_text())
        clips, windows, skipped = int(report["videos_used"]), int(report["windows"]), len(report["skipped"])
        rates = ", ".join(f"{float(f):g}" for f in report.get("fps", []))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    line = f"data: {clips} clip{'s' * (clips != 1)}"
    if windows != clips:
        line += f", {windows} windows"
    if rates:
        line += f" at {rates} fps"
    return line + (f" ({skipped} skipped: see the log)" if skipped else " (none skipped)")
