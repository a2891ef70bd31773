"""The Diversity tab: N seeds of one prompt through several models, as a video grid and a still-frame grid,
with a table of metrics and bar charts per model. On the shapes world the recognizer measures exactly
(modes, named attributes); on any other base the feature models named on the page do: diversity (paper
Eq. 26) on CLIP and DINOv2 features, CLIP prompt adherence; colour and motion everywhere. For an
image-to-video base every model and seed starts from the same uploaded first frame (studio/frames.py).

Like Compare, it samples through `sample` jobs (the worker, one GPU holder at a time) for every base but
the tiny built-in world on a machine without a GPU, which it samples in the web process. The request itself (its
checks, cache, sampling, metrics and results) is studio/diversity_plan.py; this module is the page."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

import engine
from engine import ModelError, world

from . import frames, lineup, recall, sample_jobs
from .access import LOCAL, Access
from .choices import ModelChecklist, base_dropdown
from .diversity_plan import (
    BARS,
    BETTER,
    COLUMNS,
    DiversityResult,
    heading,
    model_choices,
    plan,
    poll,
    queue,
    read_results,
    run,
)
from .identity import LOCAL_OWNER, Identity, visitor_of
from .measures import default_features

# The players' own buttons (download, fullscreen, share) sit over the top right corner of the video and of the
# image, where the grids' last "seed N" header is drawn: the grids start below them.
CSS = """
#diversity-grid {padding-top:30px !important}
#diversity-stills .image-container {padding-top:30px}
"""


def chart_name(model: str) -> str:
    """A model's name short enough for a small chart's axis: "DMD2", "dmd2-ar", "DFD ab12cd" (a job's)."""
    method, _, name = model.removesuffix(" (shipped)").partition(" · ")
    return f"{method} {name[-6:]}" if name.startswith("j-") else name or method


def _outputs(result: DiversityResult) -> list:
    plots = []
    for metric in BARS:
        rows = result.bars[result.bars.metric == metric].assign(model=lambda b: b.model.map(chart_name))
        # from zero (a bar's height is its value) to just over the largest: small values fill their own chart
        low, high = min(0.0, *rows.value) if len(rows) else 0.0, max(rows.value, default=0.0)
        top = high * 1.15 if high > 0 else 1.0
        plots.append(gr.update(value=rows, visible=not rows.empty, sort=list(rows.model), y_lim=[low * 1.15, top]))
    shown = result.table.rename(
        columns=lambda c: heading(c, result.modes)
    )  # the page's headers say which way is better
    return [result.grid_video, result.still_image, shown, gr.Column(visible=True), *plots, result.note]


def build(
    data_dir: Path,
    public_dir: Path,
    base: str = lineup.DEFAULT_BASE,
    access: Access = LOCAL,
    identity: Identity = LOCAL_OWNER,
):
    """The tab's components and events (call inside gr.Blocks). access: which server folders and hub ids a
    visitor may name (studio/access.py); identity: whose sample jobs these are and their cap (studio/identity.py)."""
    prompts = world.prompt_set("underspecified") + world.prompt_set("detailed")
    with gr.Row():
        base_box = base_dropdown(data_dir, base, access, "diversity", "models")
        prompt = gr.Dropdown(
            choices=prompts,
            value=prompts[0],
            allow_custom_value=True,
            label="Prompt",
            scale=3,
            info="underspecified prompts leave factors free: collapse shows as few modes covered",
        )
        n_seeds = gr.Slider(
            2,
            16,
            value=8,
            step=1,
            label="Seeds",
            scale=1,
            info="samples per model (seeds 1..N)",
            elem_id="diversity-seeds",
        )
    with gr.Row():
        models = ModelChecklist(
            label="Models",
            choices=[],
            scale=3,
            elem_id="diversity-models",
            info="teacher and students of this base; the teacher samples at the ticked students' training CFG",
        )
        as_jobs = gr.Checkbox(
            engine.samples_in_jobs(base),
            label="Run as sample jobs",
            scale=1,
            elem_id="diversity-as-jobs",
            info="the worker samples (on for every base but the built-in world on a CPU); this "
            "page shows the result when done",
        )
        frame, world_button, follow_base = frames.picker(data_dir, base, prompt, "diversity")
    features = gr.Textbox(
        value=default_features(),
        label="Feature models",
        elem_id="diversity-features",
        placeholder="clip:openai/clip-vit-large-patch14,dinov2:facebook/dinov2-large",
        info="outside the shapes world: diversity on these encoders, prompt adherence on the CLIP "
        "one (hub ids or local folders)",
    )
    run_button = gr.Button("Sample and measure", variant="primary", elem_id="diversity-run")
    error = gr.Markdown(elem_id="diversity-error")  # why the last request was refused; stays until the next one
    # no label badges on the players: they would cover the grids' first column header
    gr.Markdown("**Video grid** (rows: models, columns: seeds)")
    grid = gr.Video(
        label="Video grid (rows: models, columns: seeds)",
        show_label=False,
        autoplay=True,
        loop=True,
        interactive=False,
        elem_id="diversity-grid",
    )
    gr.Markdown("**Still frames** (first, middle, last)")
    stills = gr.Image(
        label="Still frames (first, middle, last)",
        show_label=False,
        type="filepath",
        interactive=False,
        elem_id="diversity-stills",
    )
    # shown with the first result: empty, its fifteen headers were squeezed into words cut in two
    with gr.Column(visible=False, elem_id="diversity-table-box") as table_box:
        table = gr.Dataframe(
            label="Diversity metrics",
            headers=[heading(c) for c in COLUMNS],
            interactive=False,
            wrap=True,
            elem_id="diversity-table",
        )
    plots = []
    with gr.Row(elem_id="diversity-charts"):
        for metric in BARS:  # each on its own y axis; hidden until measured
            arrow = BETTER.get(metric)
            plots.append(
                gr.BarPlot(
                    x="model",
                    y="value",
                    title=f"{metric} {arrow}" if arrow else metric,
                    y_title=metric,
                    x_title=" ",
                    visible=False,
                    height=220,
                    min_width=240,
                    elem_id=f"diversity-bars-{metric.replace(' ', '-')}",
                )
            )
    note = gr.Markdown(elem_id="diversity-note")
    pending = gr.State(None)
    last, load_js = recall.keeper("diversity")
    poll_timer = gr.Timer(2.0, active=False)
    outputs = [grid, stills, table, table_box, *plots, note]
    keep = [gr.skip() for _ in outputs[:-1]]

    def on_run(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v=None, visitor=None):
        # the teacher at the ticked students' training CFG (a refused base is not looked into)
        cfg = lineup.teacher_cfg(data_dir, (base_v or "").strip(), keys_v)[0] if access.allows_model(base_v) else 5.0
        request = (base_v, prompt_v, n_v, keys_v, 50, cfg, features_v or "", frame_v)
        try:
            access.check_model((base_v or "").strip())
            refusal = lineup.in_web_process_refusal((base_v or "").strip(), as_jobs_v)
            if refusal:
                raise ValueError(refusal)
            if not as_jobs_v:
                return [*_outputs(run(data_dir, public_dir, *request, access=access)), None, gr.Timer(active=False)]
            result, queued = queue(data_dir, public_dir, *request, access=access, identity=identity, visitor=visitor)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        if result is not None:
            return [*_outputs(result), None, gr.Timer(active=False)]
        waiting = f"Queued sample jobs {', '.join(queued.job_ids)}; the result appears here when they are done."
        return [*keep, waiting, queued, gr.Timer(active=True)]

    def on_click(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v=None, visitor=None):
        """on_run with a refusal shown in one lasting line under the button (a raised error would mark every
        output with an error badge and say why only in a passing toast); the request is remembered."""
        try:
            shown = on_run(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v, visitor)
        except gr.Error as err:
            return [
                *(gr.skip() for _ in outputs),
                gr.skip(),
                gr.skip(),
                f"**Cannot measure:** {err.message}",
                gr.skip(),
            ]
        queued = shown[len(outputs)]
        if queued is not None:
            request = queued.request["request"]
        else:
            cfg = lineup.teacher_cfg(data_dir, (base_v or "").strip(), keys_v)[0]
            request = plan(
                data_dir, public_dir, base_v, prompt_v, n_v, keys_v, 50, cfg, features_v or "", frame_v, access
            ).request
        return [*shown, "", recall.remembered(queued and queued.job_ids, request)]

    def on_poll(queued):
        if queued is None:
            return [*keep, gr.skip(), None, gr.Timer(active=False)]
        try:
            result, progress = poll(data_dir, public_dir, queued)
        except (ValueError, ModelError) as err:
            return [*keep, f"Stopped waiting: {err}.", None, gr.Timer(active=False)]
        if result is None:
            return [*keep, progress, queued, gr.skip()]
        return [*_outputs(result), None, gr.Timer(active=False)]

    def refresh_models(base_v, current):
        if not access.allows_model(base_v):
            return gr.update(choices=[], value=[])
        choices = model_choices(data_dir, base_v)
        keys = [k for _, k in choices]
        kept = [k for k in (current or []) if k in keys]
        if set(kept) <= {lineup.TEACHER}:  # default: the teacher and the newest student of each method
            kept = [lineup.TEACHER] + list(
                {c.method: c.key for c in reversed(lineup.students(data_dir, base_v))}.values()
            )
        return gr.update(choices=choices, value=kept)

    def refresh_placement(base_v):
        """Run as sample jobs follows the base: on for every base but the built-in world on a CPU."""
        if not access.allows_model(base_v):
            return gr.update()
        return gr.update(value=engine.samples_in_jobs((base_v or "").strip()))

    def show_frame(base_v):
        """The first-frame box (and its world button) follow the base: shown for an image-to-video one, emptied
        and hidden otherwise."""
        return follow_base(base_v, access.allows_model(base_v))

    def on_click_as(request: gr.Request, *values):  # gradio hands the request to a leading parameter only
        return on_click(*values, visitor=visitor_of(request))

    run_button.click(
        on_click_as,
        [base_box, prompt, n_seeds, models, as_jobs, features, frame],
        [*outputs, pending, poll_timer, error, last],
        api_visibility="private",
    )
    poll_timer.tick(
        on_poll, [pending], [*outputs, pending, poll_timer], show_progress="hidden", api_visibility="private"
    )
    # a picked or typed base lists its models at once (a typed one when Enter is pressed or the box is left)
    base_box.change(refresh_models, [base_box, models], [models], api_visibility="private")
    base_box.change(refresh_placement, [base_box], [as_jobs], api_visibility="private")
    base_box.change(show_frame, [base_box], [frame, world_button], api_visibility="private")

    open_outputs = [base_box, prompt, n_seeds, models, features, *outputs, pending, poll_timer]

    def open_page(last_v, base_v, current):
        """On open and after a reload: the last request's settings and result (read from the cache), or its
        sample jobs waited for again; with none (or one no longer valid), this base's models ticked."""
        found = recall.recall(last_v, 8, lambda *request: plan(data_dir, public_dir, *request, access=access))
        if found is None:
            return [
                gr.skip(),
                gr.skip(),
                gr.skip(),
                refresh_models(base_v, current),
                gr.skip(),
                *keep,
                gr.skip(),
                None,
                gr.Timer(active=False),
            ]
        request, p, job_ids = found
        base_r, prompt_r, n_r, keys_r, _, _, features_r, _ = request
        form = [base_r, prompt_r, n_r, refresh_models(base_r, keys_r), features_r]
        if (p.folder / "meta.json").is_file():
            return [*form, *_outputs(read_results(p)), None, gr.Timer(active=False)]
        queued = sample_jobs.Pending(job_ids, {"request": request})
        return [*form, *keep, recall.waiting(job_ids), queued, gr.Timer(active=True)]

    return {
        "models": models,
        "base": base_box,
        "as_jobs": as_jobs,
        "refresh_models": refresh_models,
        "refresh_placement": refresh_placement,
        "frame": frame,
        "show_frame": show_frame,
        "on_run": on_run,
        "on_poll": on_poll,
        "on_click": on_click,
        "error": error,
        "last": last,
        "open_page": open_page,
        "load_js": load_js,
        "open_inputs": [last, base_box, models],
        "open_outputs": open_outputs,
    }
