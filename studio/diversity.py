"""The Diversity tab: N seeds of one prompt through several models, as a video grid and a still-frame grid,
with a table of diversity metrics and bar charts per model (shapes world: exact, via the recognizer).

Like Compare, it samples in the web process, or, ticked, through `sample` jobs for GPU-scale bases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from engine import ModelError, Rendered, still_grid, video_grid, world, write_mp4, write_png

from . import lineup, sample_jobs
from .files import cache_key
from .measures import clip_metrics

SHOWN_SIZE = 128  # each clip of the grid at about this many pixels (8 seeds x 3 models stays readable)
COLUMNS = ["model", "NFE", "diversity", "modes covered", "mode TV", "named correct", "saturation", "sharpness", "seconds"]
EXPLAINED = ("Diversity is 1 - mean pairwise cosine similarity of the recognizer's features over the seeds (paper "
             "Eq. 26); modes covered counts distinct combinations of the factors the prompt leaves free; mode TV is the "
             "total-variation distance of their frequencies from the world's (0 is perfect); named correct is the share "
             "of clips showing every named attribute.")


@dataclass
class DiversityResult:
    grid_video: str
    still_image: str
    table: pd.DataFrame
    bars: pd.DataFrame  # model, metric, value
    note: str


@dataclass
class Plan:
    contenders: list[lineup.Contender]
    folder: Path
    base: str
    prompt: str
    seeds: list[int]
    steps: int
    guidance: float


def model_choices(data_dir, base: str) -> list[tuple[str, str]]:
    return [("teacher (50 steps, CFG)", lineup.TEACHER)] + [(c.label, c.key) for c in lineup.students(data_dir, base)]


def plan(data_dir: Path, public_dir: Path, base: str, prompt: str, n_seeds: int, keys: list[str],
         steps: int = 50, guidance: float = 5.0) -> Plan:
    """Check the request and name its cache folder (settings + weights). Raises ValueError."""
    base, prompt = (base or "").strip(), (prompt or "").strip()
    if not prompt:
        raise ValueError("the prompt is empty; pick one of the world's prompts or type one")
    if not keys:
        raise ValueError("no model is ticked; tick the teacher and at least one student")
    n = int(n_seeds)
    if not 2 <= n <= 16:
        raise ValueError(f"seeds must be between 2 and 16 (diversity needs at least two samples), got {n}")
    order = [k for _, k in model_choices(data_dir, base)]  # rows: teacher, then DMD2, then DFD students
    keys = sorted(keys, key=lambda k: order.index(k) if k in order else len(order))
    contenders = [lineup.find(data_dir, base, key) for key in keys]
    folder = public_dir / "diversity" / cache_key([lineup.weights_version(c) for c in contenders], prompt, n,
                                                   int(steps), float(guidance))
    return Plan(contenders, folder, base, prompt, list(range(1, n + 1)), int(steps), float(guidance))


def write_results(p: Plan, rendered: list[Rendered]) -> None:
    """Grid video, still grid and the metrics of each model into the plan's folder."""
    rows, labels, table, notes = [], [], [], set()
    for contender, r in zip(p.contenders, rendered):
        rows.append(list(r.clips))
        labels.append(contender.short)
        measured, note = clip_metrics(p.base, p.prompt, r.clips)
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
    table = pd.DataFrame(meta["rows"], columns=COLUMNS)
    bars = pd.DataFrame(
        [{"model": r["model"], "metric": name, "value": r[name]} for r in meta["rows"]
         for name in ("diversity", "named correct") if r.get(name) is not None],
        columns=["model", "metric", "value"],
    )
    return DiversityResult(str(p.folder / "grid.mp4"), str(p.folder / "stills.png"), table, bars, meta["note"])


def run(data_dir: Path, public_dir: Path, base: str, prompt: str, n_seeds: int, keys: list[str],
        steps: int = 50, guidance: float = 5.0) -> DiversityResult:
    """Sample seeds 1..N of every chosen model in this process (cached by settings and weights), measure,
    and write the grids into the public folder. Raises ValueError / ModelError."""
    p = plan(data_dir, public_dir, base, prompt, n_seeds, keys, steps, guidance)
    if not (p.folder / "meta.json").is_file():
        write_results(p, [lineup.render(c, p.prompt, p.seeds, steps=p.steps, guidance=p.guidance) for c in p.contenders])
    return read_results(p)


def queue(data_dir: Path, public_dir: Path, *request) -> tuple[DiversityResult | None, sample_jobs.Pending | None]:
    """The job path: (cached result, None), or (None, the sample jobs queued)."""
    p = plan(data_dir, public_dir, *request)
    return sample_jobs.queue(data_dir, p, request, p.contenders, p.seeds, read_results)


def poll(data_dir: Path, public_dir: Path, pending: sample_jobs.Pending) -> tuple[DiversityResult | None, str]:
    """(result, "") once the jobs are done, else (None, how far they are). Raises ValueError."""
    return sample_jobs.finish(data_dir, pending, lambda *request: plan(data_dir, public_dir, *request),
                              write_results, read_results)


def _outputs(result: DiversityResult) -> list:
    div = result.bars[result.bars.metric == "diversity"]
    named = result.bars[result.bars.metric == "named correct"]
    return [result.grid_video, result.still_image, result.table,
            gr.update(value=div, visible=not div.empty, sort=list(div.model)),
            gr.update(value=named, visible=not named.empty, sort=list(named.model)), result.note]


def build(data_dir: Path, public_dir: Path, base: str = lineup.DEFAULT_BASE):
    prompts = world.prompt_set("underspecified") + world.prompt_set("detailed")
    with gr.Row():
        base_box = gr.Textbox(value=base, label="Base model", scale=2,
                              info="the teacher; students of this base are listed (press Enter to refresh)")
        prompt = gr.Dropdown(choices=prompts, value=prompts[0], allow_custom_value=True, label="Prompt", scale=3,
                             info="underspecified prompts leave factors free: collapse shows as few modes covered")
        n_seeds = gr.Slider(2, 16, value=8, step=1, label="Seeds", scale=1, info="samples per model (seeds 1..N)")
    with gr.Row():
        models = gr.CheckboxGroup(label="Models", choices=[], info="teacher and students of this base", scale=3,
                                  elem_id="diversity-models")
        as_jobs = gr.Checkbox(False, label="Run as sample jobs", scale=1,
                              info="for GPU-scale bases: the worker samples, this page shows the result when done")
    run_button = gr.Button("Sample and measure", variant="primary", elem_id="diversity-run")
    grid = gr.Video(label="Video grid (rows: models, columns: seeds)", autoplay=True, loop=True, interactive=False,
                    elem_id="diversity-grid")
    stills = gr.Image(label="Still frames (first, middle, last)", type="filepath", interactive=False,
                      elem_id="diversity-stills")
    table = gr.Dataframe(label="Diversity metrics", headers=COLUMNS, interactive=False, elem_id="diversity-table")
    with gr.Row():
        div_plot = gr.BarPlot(x="model", y="value", title="Diversity per model", elem_id="diversity-bars", y_lim=[0, 1],
                              visible=False)
        named_plot = gr.BarPlot(x="model", y="value", title="Named attributes correct per model", y_lim=[0, 1],
                                visible=False)
    note = gr.Markdown(elem_id="diversity-note")
    pending = gr.State(None)
    poll_timer = gr.Timer(2.0, active=False)
    outputs = [grid, stills, table, div_plot, named_plot, note]
    keep = [gr.skip() for _ in outputs[:-1]]

    def on_run(base_v, prompt_v, n_v, keys_v, as_jobs_v):
        try:
            if not as_jobs_v:
                return [*_outputs(run(data_dir, public_dir, base_v, prompt_v, n_v, keys_v)), None, gr.Timer(active=False)]
            result, queued = queue(data_dir, public_dir, base_v, prompt_v, n_v, keys_v)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        if result is not None:
            return [*_outputs(result), None, gr.Timer(active=False)]
        waiting = f"Queued sample jobs {', '.join(queued.job_ids)}; the result appears here when they are done."
        return [*keep, waiting, queued, gr.Timer(active=True)]

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
        choices = model_choices(data_dir, base_v)
        keys = [k for _, k in choices]
        kept = [k for k in (current or []) if k in keys]
        if set(kept) <= {lineup.TEACHER}:  # default: the teacher and the newest student of each method
            kept = [lineup.TEACHER] + list({c.method: c.key for c in reversed(lineup.students(data_dir, base_v))}.values())
        return gr.update(choices=choices, value=kept)

    run_button.click(on_run, [base_box, prompt, n_seeds, models, as_jobs], [*outputs, pending, poll_timer],
                     api_visibility="private")
    poll_timer.tick(on_poll, [pending], [*outputs, pending, poll_timer], show_progress="hidden", api_visibility="private")
    base_box.submit(refresh_models, [base_box, models], [models], api_visibility="private")
    return {"models": models, "base": base_box, "refresh_models": refresh_models}
