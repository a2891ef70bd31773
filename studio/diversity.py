"""The Diversity tab: N seeds of one prompt through several models, as a video grid and a still-frame grid,
with a table of metrics and bar charts per model. On the shapes world the recognizer measures exactly
(modes, named attributes); on any other base the feature models named on the page do: diversity (paper
Eq. 26) on CLIP and DINOv2 features, CLIP prompt adherence; colour and motion everywhere. For an
image-to-video base every model and seed starts from the same uploaded first frame (studio/frames.py).

Like Compare, it samples through `sample` jobs (the worker, one GPU holder at a time) for every base but
the tiny built-in world on a machine without a GPU, which it samples in the web process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

import engine
from engine import ModelError, Rendered, still_grid, video_grid, world, write_mp4, write_png

from . import frames, lineup, recall, sample_jobs
from .access import LOCAL, Access
from .choices import ModelChecklist
from .files import cache_key
from .measures import check_features, clip_metrics, default_features
from .zerogpu import on_gpu, sampling_seconds

SHOWN_SIZE = 128  # each clip of the grid at about this many pixels (8 seeds x 3 models stays readable)
COLUMNS = ["model", "NFE", "diversity", "diversity clip", "diversity dinov2", "adherence", "modes covered", "mode TV",
           "named correct", "saturation", "saturation spread", "contrast", "motion", "sharpness", "seconds"]
# Which way is better, shown after the column's name: more varied samples, more modes, closer to the prompt;
# less distance from the world's frequencies. Colour and motion have no better direction (near the teacher's is
# what a student should keep), nor do NFE and seconds, which the table shows as costs.
BETTER = {"diversity": "↑", "diversity clip": "↑", "diversity dinov2": "↑", "adherence": "↑", "modes covered": "↑",
          "mode TV": "↓", "named correct": "↑"}
# One bar chart per metric, each on its own axis (small values, e.g. motion's, stay visible).
BARS = ("diversity", "diversity clip", "diversity dinov2", "adherence", "modes covered", "mode TV", "named correct",
        "saturation", "contrast", "motion", "sharpness")
EXPLAINED = ("Diversity is 1 - mean pairwise cosine similarity of the recognizer's features over the seeds (paper "
             "Eq. 26); modes covered counts distinct combinations of the factors the prompt leaves free; mode TV is the "
             "total-variation distance of their frequencies from the world's (0 is perfect); named correct is the share "
             "of clips showing every named attribute.")
DIRECTIONS = ("↑: higher is better, ↓: lower is better. Saturation, contrast, motion and sharpness have no better "
              "direction: a student's near the teacher's kept the teacher's look.")


def heading(column: str, modes: int | None = None) -> str:
    """A column's header: its name, which way is better, and for modes covered the most there could be."""
    arrow = BETTER.get(column)
    shown = f"{column} {arrow}" if arrow else column
    return f"{shown} (of {modes})" if column == "modes covered" and modes else shown


def mode_count(prompt: str, seeds: int, image: Path | None = None) -> int | None:
    """The most modes `seeds` clips of this prompt could cover: the combinations of the factors the caption
    leaves free (only motions from a first frame, which fixes the rest), at most one per seed; None for a
    prompt that is not a caption of the world."""
    try:
        named = world.parse_caption(prompt)
    except ValueError:
        return None
    free = ["motion"] if image is not None else list(world.FACTOR_NAMES)
    count = 1
    for factor in free:
        if factor not in named:
            count *= len(world.FACTORS[factor])
    return min(seeds, count)


@dataclass
class DiversityResult:
    grid_video: str
    still_image: str
    table: pd.DataFrame
    bars: pd.DataFrame  # model, metric, value
    note: str
    modes: int | None = None  # the most modes the seeds could cover (mode_count)


@dataclass
class Plan:
    contenders: list[lineup.Contender]
    folder: Path
    base: str
    prompt: str
    seeds: list[int]
    steps: int
    guidance: float
    features: str = ""  # the feature models, checked: clip:MODEL,dinov2:MODEL
    image: Path | None = None  # the stored first frame of an image-to-video request
    request: tuple = ()  # the request as the job path replans it (the stored frame, not the upload)
    num_frames: int | None = None  # None: the model's own length (Diversity measures at it)


def model_choices(data_dir, base: str) -> list[tuple[str, str]]:
    return [("teacher (50 steps, CFG)", lineup.TEACHER)] + [(c.label, c.key) for c in lineup.students(data_dir, base)]


def plan(data_dir: Path, public_dir: Path, base: str, prompt: str, n_seeds: int, keys: list[str],
         steps: int = 50, guidance: float = 5.0, features: str | None = None, frame=None,
         access: Access = LOCAL) -> Plan:
    """Check the request and name its cache folder (settings + weights + feature models + first frame).
    Raises ValueError. `features` None: the app's default feature models. frame: the uploaded first frame
    (image-to-video bases only). access: which server folders and hub ids a visitor may name
    (studio/access.py); the app's own DFD_STUDIO_FEATURES always pass."""
    base, prompt = (base or "").strip(), (prompt or "").strip()
    access.check_model(base)  # before the base is looked at: a refused folder or hub id is never read or fetched
    if not prompt:
        raise ValueError("the prompt is empty; pick one of the world's prompts or type one")
    if not keys:
        raise ValueError("no model is ticked; tick the teacher and at least one student")
    n = int(n_seeds)
    if not 2 <= n <= 16:
        raise ValueError(f"seeds must be between 2 and 16 (diversity needs at least two samples), got {n}")
    image = frames.checked(data_dir, base, frame)  # first: an unknown base is named before its students
    order = [k for _, k in model_choices(data_dir, base)]  # rows: teacher, then DMD2, then DFD students
    keys = sorted(keys, key=lambda k: order.index(k) if k in order else len(order))
    contenders = [lineup.find(data_dir, base, key) for key in keys]
    features = default_features() if features is None else features
    if engine.world_of(base) == "shapes":
        features = ""  # the recognizer measures there
    else:
        access.check_feature_models(features, owners=default_features())  # before check_features fetches a config
        features = check_features(features)
    framed = (image.name,) if image else ()  # a text-to-video request keeps the key it always had
    folder = public_dir / "diversity" / cache_key([lineup.weights_version(c) for c in contenders], prompt, n,
                                                   int(steps), float(guidance), features, *framed)
    request = (base, prompt, n, keys, int(steps), float(guidance), features, str(image) if image else None)
    return Plan(contenders, folder, base, prompt, list(range(1, n + 1)), int(steps), float(guidance), features,
                image, request)


def write_results(p: Plan, rendered: list[Rendered]) -> None:
    """Grid video, still grid and the metrics of each model into the plan's folder."""
    rows, labels, table, notes = [], [], [], set()
    for contender, r in zip(p.contenders, rendered):
        rows.append(list(r.clips))
        labels.append(contender.short)
        measured, note = clip_metrics(p.base, p.prompt, r.clips, p.features, frames.factors_of(p.image))
        if note:
            notes.add(note)
        model = "teacher" if contender.key == lineup.TEACHER else contender.label
        table.append({"model": model, "NFE": r.nfe, **measured, "seconds": round(r.seconds, 2)})
    cols = [f"seed {s}" for s in p.seeds]
    scale = max(1, SHOWN_SIZE // max(rendered[0].clips.shape[2:4]))
    write_mp4(p.folder / "grid.mp4", video_grid(rows, labels, cols, scale=scale), fps=rendered[0].fps)
    write_png(p.folder / "stills.png", still_grid(rows, labels, cols, scale=max(1, scale // 2)))
    note = " ".join(sorted(notes)) or EXPLAINED
    (p.folder / "meta.json").write_text(json.dumps({"rows": table, "note": note, "prompt": p.prompt}, indent=2))


def read_results(p: Plan) -> DiversityResult:
    meta = json.loads((p.folder / "meta.json").read_text())
    shown = [c for c in COLUMNS if c in ("model", "NFE", "seconds") or any(r.get(c) is not None for r in meta["rows"])]
    modes = mode_count(p.prompt, len(p.seeds), p.image) if "modes covered" in shown else None
    table = pd.DataFrame(meta["rows"], columns=shown)
    bars = pd.DataFrame(
        [{"model": r["model"], "metric": name, "value": r[name]} for r in meta["rows"]
         for name in BARS if r.get(name) is not None],
        columns=["model", "metric", "value"],
    )
    teacher = f" The teacher sampled at CFG {p.guidance:g} ({p.steps} steps)."
    of = (f" Modes covered is out of {modes}: the most {len(p.seeds)} seeds of this prompt can show." if modes else "")
    return DiversityResult(str(p.folder / "grid.mp4"), str(p.folder / "stills.png"), table, bars,
                           f"{meta['note']}{of} {DIRECTIONS}{teacher}", modes)


def run(data_dir: Path, public_dir: Path, base: str, prompt: str, n_seeds: int, keys: list[str],
        steps: int = 50, guidance: float = 5.0, features: str | None = None, frame=None,
        access: Access = LOCAL) -> DiversityResult:
    """Sample seeds 1..N of every chosen model in this process (cached by settings and weights), measure,
    and write the grids into the public folder. Raises ValueError / ModelError."""
    p = plan(data_dir, public_dir, base, prompt, n_seeds, keys, steps, guidance, features, frame, access)
    if not (p.folder / "meta.json").is_file():
        render = on_gpu(lineup.render, sampling_seconds(len(p.seeds), p.steps))  # a lent GPU on ZeroGPU, else as is
        write_results(p, [render(c, p.prompt, p.seeds, steps=p.steps, guidance=p.guidance, image=p.image)
                          for c in p.contenders])
    return read_results(p)


def queue(data_dir: Path, public_dir: Path, *request, access: Access = LOCAL
          ) -> tuple[DiversityResult | None, sample_jobs.Pending | None]:
    """The job path: (cached result, None), or (None, the sample jobs queued)."""
    p = plan(data_dir, public_dir, *request, access=access)
    return sample_jobs.queue(data_dir, p, p.request, p.contenders, p.seeds, read_results,
                             before=lambda: access.check_queue(data_dir))


def poll(data_dir: Path, public_dir: Path, pending: sample_jobs.Pending) -> tuple[DiversityResult | None, str]:
    """(result, "") once the jobs are done, else (None, how far they are). Raises ValueError."""
    return sample_jobs.finish(data_dir, pending, lambda *request: plan(data_dir, public_dir, *request),
                              write_results, read_results)


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
    shown = result.table.rename(columns=lambda c: heading(c, result.modes))  # the page's headers say which way is better
    return [result.grid_video, result.still_image, shown, gr.Column(visible=True), *plots, result.note]


def build(data_dir: Path, public_dir: Path, base: str = lineup.DEFAULT_BASE, access: Access = LOCAL):
    """The tab's components and events (call inside gr.Blocks). access: which server folders and hub ids a
    visitor may name (studio/access.py)."""
    prompts = world.prompt_set("underspecified") + world.prompt_set("detailed")
    with gr.Row():
        base_box = gr.Dropdown(choices=[b for b in lineup.bases(data_dir, base) if access.allows_model(b)], value=base,
                               allow_custom_value=True, filterable=True, label="Base model", scale=2,
                               elem_id="diversity-base",
                               info="the teacher; pick one or type a folder or hub id: its models are listed")
        prompt = gr.Dropdown(choices=prompts, value=prompts[0], allow_custom_value=True, label="Prompt", scale=3,
                             info="underspecified prompts leave factors free: collapse shows as few modes covered")
        n_seeds = gr.Slider(2, 16, value=8, step=1, label="Seeds", scale=1, info="samples per model (seeds 1..N)",
                            elem_id="diversity-seeds")
    with gr.Row():
        models = ModelChecklist(label="Models", choices=[], scale=3, elem_id="diversity-models",
                                  info="teacher and students of this base; the teacher samples at the ticked "
                                       "students' training CFG")
        as_jobs = gr.Checkbox(engine.samples_in_jobs(base), label="Run as sample jobs", scale=1,
                              elem_id="diversity-as-jobs",
                              info="the worker samples (on for every base but the built-in world on a CPU); this "
                                   "page shows the result when done")
        frame, world_button, follow_base = frames.picker(data_dir, base, prompt, "diversity")
    features = gr.Textbox(value=default_features(), label="Feature models", elem_id="diversity-features",
                          placeholder="clip:openai/clip-vit-large-patch14,dinov2:facebook/dinov2-large",
                          info="outside the shapes world: diversity on these encoders, prompt adherence on the CLIP "
                               "one (hub ids or local folders)")
    run_button = gr.Button("Sample and measure", variant="primary", elem_id="diversity-run")
    error = gr.Markdown(elem_id="diversity-error")  # why the last request was refused; stays until the next one
    # no label badges on the players: they would cover the grids' first column header
    gr.Markdown("**Video grid** (rows: models, columns: seeds)")
    grid = gr.Video(label="Video grid (rows: models, columns: seeds)", show_label=False, autoplay=True, loop=True,
                    interactive=False, elem_id="diversity-grid")
    gr.Markdown("**Still frames** (first, middle, last)")
    stills = gr.Image(label="Still frames (first, middle, last)", show_label=False, type="filepath",
                      interactive=False, elem_id="diversity-stills")
    # shown with the first result: empty, its fifteen headers were squeezed into words cut in two
    with gr.Column(visible=False, elem_id="diversity-table-box") as table_box:
        table = gr.Dataframe(label="Diversity metrics", headers=[heading(c) for c in COLUMNS], interactive=False,
                             wrap=True, elem_id="diversity-table")
    plots = []
    with gr.Row(elem_id="diversity-charts"):
        for metric in BARS:  # each on its own y axis; hidden until measured
            arrow = BETTER.get(metric)
            plots.append(gr.BarPlot(x="model", y="value", title=f"{metric} {arrow}" if arrow else metric,
                                    y_title=metric, x_title=" ", visible=False, height=220, min_width=240,
                                    elem_id=f"diversity-bars-{metric.replace(' ', '-')}"))
    note = gr.Markdown(elem_id="diversity-note")
    pending = gr.State(None)
    last, load_js = recall.keeper("diversity")
    poll_timer = gr.Timer(2.0, active=False)
    outputs = [grid, stills, table, table_box, *plots, note]
    keep = [gr.skip() for _ in outputs[:-1]]

    def on_run(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v=None):
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
            result, queued = queue(data_dir, public_dir, *request, access=access)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        if result is not None:
            return [*_outputs(result), None, gr.Timer(active=False)]
        waiting = f"Queued sample jobs {', '.join(queued.job_ids)}; the result appears here when they are done."
        return [*keep, waiting, queued, gr.Timer(active=True)]

    def on_click(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v=None):
        """on_run with a refusal shown in one lasting line under the button (a raised error would mark every
        output with an error badge and say why only in a passing toast); the request is remembered."""
        try:
            shown = on_run(base_v, prompt_v, n_v, keys_v, as_jobs_v, features_v, frame_v)
        except gr.Error as err:
            return [*(gr.skip() for _ in outputs), gr.skip(), gr.skip(), f"**Cannot measure:** {err.message}",
                    gr.skip()]
        queued = shown[len(outputs)]
        if queued is not None:
            request = queued.request["request"]
        else:
            cfg = lineup.teacher_cfg(data_dir, (base_v or "").strip(), keys_v)[0]
            request = plan(data_dir, public_dir, base_v, prompt_v, n_v, keys_v, 50, cfg, features_v or "", frame_v,
                           access).request
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
            kept = [lineup.TEACHER] + list({c.method: c.key for c in reversed(lineup.students(data_dir, base_v))}.values())
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

    run_button.click(on_click, [base_box, prompt, n_seeds, models, as_jobs, features, frame],
                     [*outputs, pending, poll_timer, error, last], api_visibility="private")
    poll_timer.tick(on_poll, [pending], [*outputs, pending, poll_timer], show_progress="hidden", api_visibility="private")
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
            return [gr.skip(), gr.skip(), gr.skip(), refresh_models(base_v, current), gr.skip(), *keep, gr.skip(),
                    None, gr.Timer(active=False)]
        request, p, job_ids = found
        base_r, prompt_r, n_r, keys_r, _, _, features_r, _ = request
        form = [base_r, prompt_r, n_r, refresh_models(base_r, keys_r), features_r]
        if (p.folder / "meta.json").is_file():
            return [*form, *_outputs(read_results(p)), None, gr.Timer(active=False)]
        queued = sample_jobs.Pending(job_ids, {"request": request})
        return [*form, *keep, recall.waiting(job_ids), queued, gr.Timer(active=True)]

    return {"models": models, "base": base_box, "as_jobs": as_jobs, "refresh_models": refresh_models,
            "refresh_placement": refresh_placement, "frame": frame, "show_frame": show_frame,
            "on_run": on_run, "on_poll": on_poll, "on_click": on_click, "error": error, "last": last,
            "open_page": open_page, "load_js": load_js, "open_inputs": [last, base_box, models], "open_outputs": open_outputs}
