"""The Jobs tab: a live table of jobs (a gr.Timer polls storage), and for the chosen job its progress and
ETA, loss curves, latest preview videos, log tail, Cancel and Resume, and whether the worker is running.
Everything is read from storage on every tick, so the page shows the same after a reload or a server restart;
the chosen job is remembered in the browser. The loss curves are the exception to "everything": a page keeps
the points it has and asks only for newer ones, and plots at most MAX_PLOTTED points per curve (a 25k-step
run stores some 200k points)."""

from __future__ import annotations

import html
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

import engine.jobs as jobs_api
from engine import RUN_YAML, ConfigError, build_distill_config, read_mp4, run_config_yaml, worker_health, write_png

from .files import expose
from .job_curves import EMPTY, MAX_PLOTTED, curves, downsample, frame  # noqa: F401 (tests use them)
from .identity import LOCAL_OWNER, Identity, visitor_of

POLL_SECONDS = 2.0
LOSS_NAMES = ("loss_student", "loss_fake")
ACTIVE = ("queued", "running")  # what engine.jobs.cancel accepts
RESUMABLE = ("interrupted", "cancelled", "failed")  # what engine.jobs.resume accepts
PREVIEWS_SHOWN = 8
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # with < > & as entities: no link, image, emphasis or tag


def plain(text) -> str:
    """Text shown as it is in a Markdown component: no link, image, emphasis or HTML made of a prompt (an
    image link in a prompt would otherwise be fetched by every viewer's browser)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


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


def _bar(job) -> str:
    pct = round(100 * fraction(job))
    return (f'<div class="dfd-bar" title="{pct}%"><div class="dfd-fill dfd-{job.state}" style="width:{pct}%"></div></div>'
            f'<span class="dfd-pct">{pct}%</span>')


def table_html(jobs: list) -> str:
    """The live table: id, what, state, a progress bar, step, ETA, the latest student loss."""
    if not jobs:
        return '<p class="dfd-empty">No jobs yet. Launch one in the Distill tab.</p>'
    rows = []
    for job in jobs:
        loss = job.loss_terms.get("loss_student")
        rows.append(
            "<tr>"
            f"<td><code>{html.escape(job.id)}</code></td><td>{html.escape(describe(job))}</td>"
            f'<td><span class="dfd-state dfd-{job.state}">{job.state}</span></td>'
            f"<td>{_bar(job)}</td><td>{job.step}/{job.total if job.total is not None else '?'}</td>"
            f"<td>{eta(job)}</td><td>{'—' if loss is None else f'{loss:.4g}'}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("job", "what", "state", "progress", "step", "ETA", "student loss"))
    return f'<table class="dfd-jobs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def job_choices(jobs: list) -> list[tuple[str, str]]:
    return [(f"{job.id} · {describe(job)} · {job.state}", job.id) for job in jobs]


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


def poster(video: Path) -> Path | None:
    """A still beside a preview video for its player to show before it plays (its middle frame: the first
    is often the bare background), written once; None when the video cannot be read."""
    still = video.with_suffix(".png")
    if not still.is_file():
        try:
            frames = read_mp4(video)
            write_png(still, frames[len(frames) // 2])
        except (OSError, ValueError, IndexError, RuntimeError):
            return None
    return still


def previews_html(videos: list[tuple[str, str]]) -> str:
    """The preview videos as players with a poster frame each and their whole caption (step, prompt, seed)
    under them, so that seeds and prompts can be told apart at a glance."""
    if not videos:
        return '<p class="dfd-none">No preview videos yet: the run writes them every preview_every steps.</p>'
    cells = []
    for path, caption in videos:
        still = poster(Path(path))
        cover = f' poster="gradio_api/file={html.escape(str(still))}"' if still else ""
        cells.append(f'<figure><video controls loop muted preload="none"{cover} '
                     f'src="gradio_api/file={html.escape(path)}"></video><figcaption>{html.escape(caption)}'
                     "</figcaption></figure>")
    return f'<div class="dfd-previews">{"".join(cells)}</div>'


def run_config(data_dir: Path, public_dir: Path, job_id: str | None) -> str | None:
    """The chosen distill job's run.yaml, as a file in the public folder to download: the one the run wrote
    beside its outputs, or (queued, not started yet) the same text made from the job row. None for other
    kinds of job, or a row whose settings no longer make a config."""
    try:
        job = jobs_api.get(data_dir, job_id) if job_id else None
    except jobs_api.JobNotFound:
        return None
    if job is None or job.kind != "distill":
        return None
    written = Path(job.dir) / RUN_YAML if job.dir else None
    if written is not None and written.is_file():
        return str(expose(written, public_dir, f"jobs/{job.id}/{RUN_YAML}"))
    try:
        config = build_distill_config(values=dict(job.config), check=False)
    except ConfigError:
        return None
    target = (public_dir / "jobs" / job.id / RUN_YAML).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = run_config_yaml(config)
    if not target.is_file() or target.read_text() != text:
        target.write_text(text)
    return str(target)


def _config_update(path: str | None) -> dict:
    return gr.update(value=path, visible=path is not None)


def allowed_actions(job) -> tuple[bool, bool]:
    """(may cancel, may resume): Cancel while queued or running and not already asked to stop; Resume
    only for a job the state machine lets go back to the queue."""
    return job.state in ACTIVE and not job.cancel_requested, job.state in RESUMABLE


def button_states(d: Detail) -> tuple[dict, dict]:
    """The Cancel and Resume buttons for the shown job: clickable only when the action is allowed."""
    return gr.update(interactive=d.can_cancel), gr.update(interactive=d.can_resume)


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
    where = (f"step {job.step}/{total} · {round(100 * fraction(job))}% · ETA {eta(job)}" if resumed is None else
             f"resuming from the checkpoint at step {resumed}/{total} · ETA after its first new step")
    lines = [f"### {job.id} · {plain(describe(job))}",
             f"**{job.state}**{' (cancel requested)' if job.cancel_requested and job.state == 'running' else ''} · "
             + where]
    rate = job.loss_terms.get("it_per_s") if resumed is None else None
    if rate:
        lines[-1] += f" · {rate:.2f} steps/s"
    if job.started_at:
        end = job.finished_at or time.time()
        lines[-1] += f" · ran {duration(end - job.started_at)}"
    if job.error:
        lines.append(f"> {plain(job.error)}")
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
    return line + (" (none yet: so far this run trains as DMD2 continued)" if job.state in ACTIVE
                   else " (none: this run trained as DMD2 continued)")


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


def cancel(data_dir: Path, job_id: str | None, identity: Identity = LOCAL_OWNER, visitor: str | None = None) -> str:
    if not job_id:
        return "Pick a job to cancel."
    try:
        identity.check_may_act(visitor, jobs_api.get(data_dir, job_id), "cancel")
        job = jobs_api.cancel(data_dir, job_id)
    except (jobs_api.IllegalTransition, jobs_api.JobNotFound, PermissionError) as err:
        return str(err)
    return (f"Job {job.id} is cancelled." if job.state == "cancelled"
            else f"Cancel requested: job {job.id} stops at its next step (within 10 s); its checkpoints stay.")


def resume(data_dir: Path, job_id: str | None, identity: Identity = LOCAL_OWNER, visitor: str | None = None) -> str:
    if not job_id:
        return "Pick a job to resume."
    try:
        identity.check_may_act(visitor, jobs_api.get(data_dir, job_id), "resume")
        job = jobs_api.resume(data_dir, job_id)
    except (jobs_api.IllegalTransition, jobs_api.JobNotFound, PermissionError) as err:
        return str(err)
    return f"Job {job.id} is queued again; it continues from its newest checkpoint."


CSS = """
.dfd-jobs {width:100%; border-collapse:collapse; font-size:0.9em}
.dfd-jobs th, .dfd-jobs td {padding:4px 8px; border-bottom:1px solid var(--border-color-primary); text-align:left}
.dfd-bar {display:inline-block; width:120px; height:10px; background:var(--neutral-200); border-radius:5px;
          overflow:hidden; vertical-align:middle}
.dfd-fill {height:100%; background:var(--color-accent)}
.dfd-fill.dfd-succeeded {background:#16a34a} .dfd-fill.dfd-failed {background:#dc2626}
.dfd-fill.dfd-interrupted, .dfd-fill.dfd-cancelled {background:#d97706}
.dfd-pct {margin-left:6px; font-size:0.85em}
#job-cancel[disabled], #job-resume[disabled] {opacity:0.4; cursor:not-allowed; filter:grayscale(1)}
.dfd-state {padding:1px 6px; border-radius:8px; background:#f3f4f6; color:#1f2937}  /* pale pill, dark text in
   either theme: the dark theme's light text on these fills is unreadable */
.dfd-state.dfd-running {background:#dbeafe} .dfd-state.dfd-succeeded {background:#dcfce7}
.dfd-previews {display:grid; grid-template-columns:repeat(4, minmax(0, 1fr)); gap:8px}
.dfd-previews figure {margin:0} .dfd-previews video {width:100%; background:#000; border-radius:4px}
.dfd-previews figcaption {font-size:0.85em; overflow-wrap:anywhere}
.dfd-state.dfd-failed {background:#fee2e2} .dfd-state.dfd-interrupted, .dfd-state.dfd-cancelled {background:#fef3c7}
"""


def build(data_dir: Path, public_dir: Path, identity: Identity = LOCAL_OWNER):
    timer = gr.Timer(POLL_SECONDS)
    health = gr.Markdown(elem_id="worker-health")
    remembered = gr.BrowserState(None, storage_key="dfd-studio-selected-job")
    table = gr.HTML(elem_id="jobs-table")
    picker = gr.Dropdown(label="Job", choices=[], elem_id="job-picker", allow_custom_value=True,
                         info="the newest job is shown unless you pick one")
    header = gr.Markdown(elem_id="job-header")
    with gr.Row():
        cancel_button = gr.Button("Cancel", variant="stop", interactive=False, elem_id="job-cancel")
        resume_button = gr.Button("Resume", interactive=False, elem_id="job-resume")
    action = gr.Markdown(elem_id="job-action")
    with gr.Row():
        losses = gr.LinePlot(EMPTY, x="step", y="value", color="name", title="Losses", elem_id="job-losses", height=260,
                            visible=False)
        diagnostics = gr.LinePlot(EMPTY, x="step", y="value", color="name", title="Data forcing and validity gap",
                                  elem_id="job-diagnostics", height=260, visible=False)
    gr.Markdown("**Latest preview videos**")
    previews = gr.HTML(previews_html([]), elem_id="job-previews")
    config_file = gr.File(label="Download config (run.yaml)", interactive=False, elem_id="job-config",
                          visible=False)
    log = gr.Code(label="Log (last 40 lines)", language=None, lines=12, interactive=False, elem_id="job-log")
    shown = gr.State(())  # (signature, curves) of what this page shows

    def refresh(selected, remembered_id, last_shown):
        jobs = jobs_api.list_jobs(data_dir, limit=50)
        ids = [job.id for job in jobs]
        chosen = selected if selected in ids else remembered_id if remembered_id in ids else (ids[0] if ids else None)
        last_signature, held = last_shown if len(last_shown or ()) == 2 else ((), None)
        d = detail(data_dir, public_dir, chosen, held)
        changed = d.signature != last_signature
        return (
            table_html(jobs),
            gr.update(choices=job_choices(jobs), value=chosen),
            d.header,
            *button_states(d),
            gr.update(value=d.losses, visible=not d.losses.empty) if changed else gr.skip(),
            gr.update(value=d.diagnostics, visible=not d.diagnostics.empty) if changed else gr.skip(),
            previews_html(d.videos) if changed else gr.skip(),
            _config_update(run_config(data_dir, public_dir, chosen)) if changed else gr.skip(),
            d.log,
            (d.signature, d.held),
            plain(worker_health(data_dir).line()),
        )

    outputs = [table, picker, header, cancel_button, resume_button, losses, diagnostics, previews, config_file, log,
               shown, health]
    timer.tick(refresh, [picker, remembered, shown], outputs, show_progress="hidden", api_visibility="private")
    picker.input(lambda job_id: job_id, [picker], [remembered], api_visibility="private").then(
        refresh, [picker, remembered, shown], outputs, show_progress="hidden", api_visibility="private")
    def act(do, job_id, request: gr.Request = None):  # the message, and the buttons as the new state allows
        message = do(data_dir, job_id, identity, visitor_of(request))
        return (message, *button_states(detail(data_dir, public_dir, job_id)))

    def on_cancel(job_id, request: gr.Request = None):  # gradio gives the request to functions, not partials
        return act(cancel, job_id, request)

    def on_resume(job_id, request: gr.Request = None):
        return act(resume, job_id, request)

    for button, do in ((cancel_button, on_cancel), (resume_button, on_resume)):
        button.click(do, [picker], [action, cancel_button, resume_button], api_visibility="private")
    return {"refresh": refresh, "inputs": [picker, remembered, shown], "outputs": outputs, "picker": picker,
            "remembered": remembered, "act": act, "cancel": cancel_button, "resume": resume_button}
