"""The Jobs tab: a live table of jobs (a gr.Timer polls storage), and for the chosen job its progress and
ETA, loss curves, latest preview videos, log tail, Cancel and Resume, and whether the worker is running.
Everything is read from storage on every tick, so the page shows the same after a reload or a server restart;
the chosen job is kept in the address (?job=ID: a reload, or the address sent to someone, shows it) and
remembered in the browser. The loss curves are the exception to "everything": a page keeps
the points it has and asks only for newer ones, and plots at most MAX_PLOTTED points per curve (a 25k-step
run stores some 200k points)."""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path

import gradio as gr

import engine.jobs as jobs_api
from engine import RUN_YAML, ConfigError, build_distill_config, read_mp4, run_config_yaml, worker_health, write_png

from .access import LOCAL
from .admission import check_room
from .files import expose
from .identity import LOCAL_OWNER, Identity, visitor_of
from .job_curves import EMPTY
from .job_detail import Detail, describe, detail, eta, fraction, plain

POLL_SECONDS = 2.0
# Browser code: a page that shows no job yet (just opened) asks for the one its address names; the shown job is
# written into the address (without reloading or adding history) after every refresh, from the picker the refresh
# set: a refresh that was already under way when the person picked a job can land after the pick, so only the
# last refresh to finish knows the job on screen.
JOB_FROM_URL = "(picked, ...rest) => [picked || new URLSearchParams(window.location.search).get('job'), ...rest]"
JOB_IN_URL = (
    "(job) => { if (!job) return; const url = new URL(window.location.href); url.searchParams.set('job', job); "
    "window.history.replaceState(window.history.state, '', url); }"
)


def _bar(job) -> str:
    pct = round(100 * fraction(job))
    return (
        f'<div class="dfd-bar" title="{pct}%"><div class="dfd-fill dfd-{job.state}" style="width:{pct}%"></div></div>'
        f'<span class="dfd-pct">{pct}%</span>'
    )


def step_cell(job) -> str:
    """step/total; before the first step of a run on a new data set, the videos its first pass has encoded."""
    data = job.loss_terms.get("data_total")
    if job.step == 0 and data is not None and job.state == "running":
        return f"data {int(job.loss_terms.get('data_done', 0))}/{int(data)}"
    return f"{job.step}/{job.total if job.total is not None else '?'}"


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
            f"<td>{_bar(job)}</td><td>{step_cell(job)}</td>"
            f"<td>{eta(job)}</td><td>{'—' if loss is None else f'{loss:.4g}'}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("job", "what", "state", "progress", "step", "ETA", "student loss"))
    return f'<table class="dfd-jobs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def job_choices(jobs: list) -> list[tuple[str, str]]:
    return [(f"{job.id} · {describe(job)} · {job.state}", job.id) for job in jobs]


def choose(data_dir: Path, ids: list[str], selected: str | None, remembered_id: str | None) -> tuple[str | None, str]:
    """(the job to show, a note when the asked one is not there): the picked job or the address's (also one
    older than the jobs listed), else the one this browser remembers, else the newest."""
    if selected in ids:
        return selected, ""
    if selected:
        try:
            return jobs_api.get(data_dir, selected).id, ""
        except jobs_api.JobNotFound:
            pass
    chosen = remembered_id if remembered_id in ids else (ids[0] if ids else None)
    if not selected:
        return chosen, ""
    instead = f"showing {chosen}" if chosen else "it has no jobs yet"
    return chosen, f"There is no job {plain(selected)} in this studio (the address or the Job box names it); {instead}."


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


NO_PREVIEWS = '<p class="dfd-none">No preview videos yet: the run writes them every preview_every steps.</p>'


def previews_html(videos: list[tuple[str, str]], empty: str = NO_PREVIEWS) -> str:
    """Videos of the public folder as players with a poster frame each and their whole caption (step, prompt,
    seed) under them, so that seeds and prompts can be told apart at a glance (Jobs' previews, Publish's
    samples); `empty` with none."""
    if not videos:
        return empty
    cells = []
    for path, caption in videos:
        still = poster(Path(path))
        cover = f' poster="gradio_api/file={html.escape(str(still))}"' if still else ""
        cells.append(
            f'<figure><video controls loop muted preload="none"{cover} '
            f'src="gradio_api/file={html.escape(path)}"></video><figcaption>{html.escape(caption)}'
            "</figcaption></figure>"
        )
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


def button_states(d: Detail) -> tuple[dict, dict]:
    """The Cancel and Resume buttons for the shown job: clickable only when the action is allowed."""
    return gr.update(interactive=d.can_cancel), gr.update(interactive=d.can_resume)


def cancel(data_dir: Path, job_id: str | None, identity: Identity = LOCAL_OWNER, visitor: str | None = None) -> str:
    if not job_id:
        return "Pick a job to cancel."
    try:
        identity.check_may_act(visitor, jobs_api.get(data_dir, job_id), "cancel")
        job = jobs_api.cancel(data_dir, job_id)
    except (jobs_api.IllegalTransition, jobs_api.JobNotFound, PermissionError) as err:
        return str(err)
    return (
        f"Job {job.id} is cancelled."
        if job.state == "cancelled"
        else f"Cancel requested: job {job.id} stops at its next step (within 10 s); its checkpoints stay."
    )


def resume(
    data_dir: Path, job_id: str | None, identity: Identity = LOCAL_OWNER, visitor: str | None = None, access=LOCAL
) -> str:
    if not job_id:
        return "Pick a job to resume."
    try:
        identity.check_may_act(visitor, jobs_api.get(data_dir, job_id), "resume")
        check_room(data_dir, access, identity, visitor)  # a resumed job is queued again: the same caps as a new one
        job = jobs_api.resume(data_dir, job_id)
    except (jobs_api.IllegalTransition, jobs_api.JobNotFound, PermissionError) as err:
        return str(err)
    except ValueError as err:
        return f"Cannot resume job {job_id}: {err}."
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


def build(data_dir: Path, public_dir: Path, identity: Identity = LOCAL_OWNER, access=LOCAL):
    timer = gr.Timer(POLL_SECONDS)
    health = gr.Markdown(elem_id="worker-health")
    remembered = gr.BrowserState(None, storage_key="dfd-studio-selected-job")
    table = gr.HTML(elem_id="jobs-table")
    picker = gr.Dropdown(
        label="Job",
        choices=[],
        elem_id="job-picker",
        allow_custom_value=True,
        info="the newest job is shown unless you pick one",
    )
    header = gr.Markdown(elem_id="job-header")
    with gr.Row():
        cancel_button = gr.Button("Cancel", variant="stop", interactive=False, elem_id="job-cancel")
        resume_button = gr.Button("Resume", interactive=False, elem_id="job-resume")
    action = gr.Markdown(elem_id="job-action")
    with gr.Row():
        losses = gr.LinePlot(
            EMPTY, x="step", y="value", color="name", title="Losses", elem_id="job-losses", height=260, visible=False
        )
        diagnostics = gr.LinePlot(
            EMPTY,
            x="step",
            y="value",
            color="name",
            title="Data forcing and validity gap",
            elem_id="job-diagnostics",
            height=260,
            visible=False,
        )
    gr.Markdown("**Latest preview videos**")
    previews = gr.HTML(previews_html([]), elem_id="job-previews")
    config_file = gr.File(label="Download config (run.yaml)", interactive=False, elem_id="job-config", visible=False)
    log = gr.Code(label="Log (last 40 lines)", language=None, lines=12, interactive=False, elem_id="job-log")
    shown = gr.State(())  # (signature, curves) of what this page shows

    def refresh(selected, remembered_id, last_shown):
        jobs = jobs_api.list_jobs(data_dir, limit=50)
        chosen, missing = choose(data_dir, [job.id for job in jobs], selected, remembered_id)
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
            missing or gr.skip(),  # said in the action line, which stays until the next action
            d.log,
            (d.signature, d.held),
            plain(worker_health(data_dir).line()),
        )

    outputs = [
        table,
        picker,
        header,
        cancel_button,
        resume_button,
        losses,
        diagnostics,
        previews,
        config_file,
        action,
        log,
        shown,
        health,
    ]

    def then_in_address(event):
        """After a refresh: the job it shows, written into the address."""
        return event.then(None, [picker], None, js=JOB_IN_URL)

    then_in_address(
        timer.tick(
            refresh,
            [picker, remembered, shown],
            outputs,
            js=JOB_FROM_URL,
            show_progress="hidden",
            api_visibility="private",
        )
    )
    then_in_address(
        picker.input(lambda job_id: job_id, [picker], [remembered], api_visibility="private").then(
            refresh, [picker, remembered, shown], outputs, show_progress="hidden", api_visibility="private"
        )
    )

    def act(do, job_id, request: gr.Request = None):  # the message, and the buttons as the new state allows
        message = do(data_dir, job_id, identity, visitor_of(request))
        return (message, *button_states(detail(data_dir, public_dir, job_id)))

    def on_cancel(job_id, request: gr.Request = None):  # gradio gives the request to functions, not partials
        return act(cancel, job_id, request)

    def on_resume(job_id, request: gr.Request = None):
        return act(partial(resume, access=access), job_id, request)

    for button, do in ((cancel_button, on_cancel), (resume_button, on_resume)):
        button.click(do, [picker], [action, cancel_button, resume_button], api_visibility="private")
    return {
        "refresh": refresh,
        "inputs": [picker, remembered, shown],
        "outputs": outputs,
        "load_js": JOB_FROM_URL,
        "picker": picker,
        "remembered": remembered,
        "then_in_address": then_in_address,
        "act": act,
        "cancel": cancel_button,
        "resume": resume_button,
    }
