"""The Compare tab: one prompt and seed through the teacher (50 steps with CFG), a DMD2 student and a DFD
student (4 steps each), side by side and as one synchronized composite video, with NFE and wall time. A
causal (autoregressive) student in a student slot is sampled chunk by chunk by the engine, and its clip
also shows the time to its first chunk and its frames per second (streaming figures, latents only). For
an image-to-video base all three start from the same uploaded first frame (studio/frames.py). Under each
clip its own figures, measured as the Diversity tab measures (studio/measures.py): CLIP prompt adherence
(with a CLIP model among the app's feature models), whether the clip shows every named attribute (the
shapes world's recognizer), saturation, contrast, motion and sharpness.

Sampling runs as `sample` jobs that the worker runs (every base but the tiny built-in world on a CPU: the
worker lets one job hold the GPU at a time), the page polling until they are done; or, unticked, in the web
process (the tiny built-in world: seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

import engine
from engine import ModelError, Rendered, side_by_side, world, write_mp4

from . import frames, lineup, recall, sample_jobs
from .access import LOCAL, Access
from .choices import StudentDropdown
from .files import cache_key
from .measures import clip_metrics, default_features
from .zerogpu import on_gpu, sampling_seconds

SLOTS = ("teacher", "dmd2", "dfd")
MAX_FRAMES = 161  # twice Wan's 81: a longer clip from the bidirectional teacher would not fit a GPU
SHOWN_SIZE = 256  # small clips are upscaled (nearest) to about this many pixels
# A clip's own figures, in the order shown; diversity, modes and spreads need several clips, so are not here.
FIGURES = ("adherence", "named correct", "saturation", "contrast", "motion", "sharpness")
CFG_INFO = "uncond + s * (cond - uncond); "
NO_ADHERENCE = ("Prompt adherence needs a CLIP model: start the studio with DFD_STUDIO_FEATURES=clip:MODEL (a local "
                "folder or a hub id, e.g. clip:openai/clip-vit-large-patch14).")


@dataclass
class CompareResult:
    videos: dict[str, str | None] = field(default_factory=dict)  # slot -> mp4 in the public folder
    captions: dict[str, str] = field(default_factory=dict)  # slot -> "NFE 100 · 1.9 s" or why it is empty
    composite: str | None = None
    note: str = ""


@dataclass
class Plan:
    contenders: dict[str, lineup.Contender]
    missing: dict[str, str]  # slot -> why it is empty
    folder: Path  # where the results are (or will be) cached
    prompt: str
    seed: int
    steps: int
    guidance: float
    image: Path | None = None  # the stored first frame of an image-to-video request
    request: tuple = ()  # the request as the job path replans it (the stored frame, not the upload)
    num_frames: int | None = None  # None: the model's own length


def student_choices(data_dir, base: str, method: str) -> list[tuple[str, str]]:
    return [(c.label, c.key) for c in lineup.students(data_dir, base, method)]


def _missing(method: str, base: str) -> str:
    return (f"No {lineup.METHOD_NAMES[method]} student of `{base}` yet: train one in the Distill tab "
            "(the shipped students appear here when the repo has them).")


def video_frames(value) -> int | None:
    """The "Video frames" setting: None for 0 or blank (the model's own length), else a checked 4k+1 count."""
    if value is None or value == "" or value == 0:
        return None
    try:
        count = int(float(value)) if float(value).is_integer() else -1
    except (TypeError, ValueError):
        count = -1
    if count < 1 or (count - 1) % 4 or count > MAX_FRAMES:
        raise ValueError(f"Video frames must be 4k+1 between 1 and {MAX_FRAMES} (e.g. 17 or 65), or 0 for the "
                         f"model's own length; got {value}")
    return count


def plan(data_dir: Path, public_dir: Path, base: str, prompt: str, seed, dmd2_key: str | None, dfd_key: str | None,
         steps: int = 50, guidance: float = 5.0, frame=None, num_frames=None, access: Access = LOCAL) -> Plan:
    """Check the request and name its cache folder (settings + weights + first frame + length). Raises
    ValueError. frame: the uploaded first frame (image-to-video bases only); num_frames: the clips' length
    (None or 0: the model's own); access: which server folders and hub ids a visitor may name
    (studio/access.py)."""
    base, prompt = (base or "").strip(), (prompt or "").strip()
    access.check_model(base)  # before the base is looked at: a refused folder or hub id is never read or fetched
    if not prompt:
        raise ValueError("the prompt is empty; pick one of the world's prompts or type one")
    if seed is None or int(seed) < 0 or int(seed) != seed:
        raise ValueError("the seed must be a whole number of 0 or more")
    image = frames.checked(data_dir, base, frame)  # first: an unknown base is named before its students
    contenders, missing = {"teacher": lineup.teacher(base)}, {}
    for slot, key in (("dmd2", dmd2_key), ("dfd", dfd_key)):
        if key:
            contenders[slot] = lineup.find(data_dir, base, key)
        else:
            missing[slot] = _missing(slot, base)
    length = video_frames(num_frames)
    versions = [lineup.weights_version(c) for c in contenders.values()]
    framed = (image.name,) if image else ()  # a text-to-video request keeps the key it always had
    framed += ("figures", default_features())  # the figures under each clip are measured by the app's feature models
    if any(c.causal for c in contenders.values()):
        framed += ("stream",)  # results of a causal student carry its streaming figures
    if length:
        framed += ("frames", length)  # the model's own length keeps the key it always had
    folder = public_dir / "compare" / cache_key(versions, prompt, int(seed), int(steps), float(guidance), *framed)
    request = (base, prompt, int(seed), dmd2_key, dfd_key, int(steps), float(guidance), str(image) if image else None,
               length)
    return Plan(contenders, missing, folder, prompt, int(seed), int(steps), float(guidance), image, request, length)


def _label(slot: str, contender: lineup.Contender, p: Plan, nfe: int) -> str:
    if slot == "teacher":
        kind = " (bidirectional)" if any(c.causal for c in p.contenders.values()) else ""
        return f"teacher{kind} · {p.steps} steps · CFG {p.guidance:g}"
    if contender.causal:  # its NFE counts each chunk's steps and the forward that commits it to the cache
        return f"{contender.label} · {nfe - 1} steps per chunk"
    return f"{contender.label} · {nfe} steps"


def _stream(r: Rendered) -> dict | None:
    """A causal student's streaming figures: seconds to its first chunk and frames per second of the whole clip,
    both on the chunks' latents (decoding excluded), as the engine's sampler timed them."""
    if not r.stream:
        return None
    count, every = int(r.clips.shape[1]), r.stream["all_chunks_seconds"]
    return {"first_chunk_seconds": round(r.stream["first_chunk_seconds"], 4), "all_chunks_seconds": round(every, 4),
            "frames": count, "frames_per_second": count / every if every > 0 else None}  # rounded once, when shown


def write_results(p: Plan, rendered: dict[str, Rendered], job_seconds: bool = False) -> None:
    """Each clip and the composite into the plan's folder, with what to say under each."""
    clips, labels, slots, no_adherence = [], [], {}, False
    for slot, contender in p.contenders.items():
        r = rendered[slot]
        scale = max(1, SHOWN_SIZE // max(r.clips.shape[2:4]))
        label = _label(slot, contender, p, r.nfe)
        write_mp4(p.folder / f"{slot}.mp4", r.clips[0], fps=r.fps, scale=scale)
        clips.append(r.clips[0])
        labels.append(label)
        measured, _ = clip_metrics(contender.base, p.prompt, r.clips[:1])
        slots[slot] = {"label": label, "nfe": r.nfe, "seconds": round(r.seconds, 3), "key": contender.key,
                       "figures": {k: measured[k] for k in FIGURES if measured.get(k) is not None},
                       "causal": contender.causal, "stream": _stream(r) if contender.causal else None}
        no_adherence |= "adherence" not in measured and engine.world_of(contender.base) != "shapes"
    scale = max(1, SHOWN_SIZE // max(clips[0].shape[1:3]))
    fps = next(iter(rendered.values())).fps
    write_mp4(p.folder / "composite.mp4", side_by_side(clips, labels, scale=scale), fps=fps)
    timing = "job time (model loading included)" if job_seconds else "sampling and decoding, model loading excluded"
    (p.folder / "meta.json").write_text(json.dumps({"prompt": p.prompt, "seed": p.seed, "slots": slots,
                                                    "frames": int(clips[0].shape[0]),
                                                    "timing": timing, "frame": p.image.name if p.image else None,
                                                    "figures_note": NO_ADHERENCE if no_adherence else ""}, indent=2))


def read_results(p: Plan) -> CompareResult:
    meta = json.loads((p.folder / "meta.json").read_text())
    result = CompareResult(captions=dict(p.missing))
    streamed = False
    for slot, info in meta["slots"].items():
        result.videos[slot] = str(p.folder / f"{slot}.mp4")
        per_chunk = " per chunk" if info.get("causal") else ""
        result.captions[slot] = f"**{info['label']}** · NFE {info['nfe']}{per_chunk} · {info['seconds']:.2f} s"
        stream = info.get("stream")
        if stream:
            streamed = True
            fps = f" · {stream['frames_per_second']:.1f} frames/s" if stream.get("frames_per_second") else ""
            result.captions[slot] += f"  \nstreaming: first chunk {stream['first_chunk_seconds']:.2f} s{fps}"
        figures = info.get("figures") or {}
        if figures:
            result.captions[slot] += "  \n" + " · ".join(f"{k} {v:.3g}" for k, v in figures.items())
    result.composite = str(p.folder / "composite.mp4")
    start = ", all from the same first frame" if meta.get("frame") else ""
    length = f", {meta['frames']} frames" if meta.get("frames") else ""
    result.note = (f"*{p.prompt}*, seed {p.seed}{length}{start}. Wall time: {meta.get('timing', 'sampling and decoding')}, "
                   "on this machine. Under each clip: its own figures, as the Diversity tab measures them (named "
                   "correct: 1 when the recognizer sees every attribute the prompt names).")
    if streamed:
        where = "in its sample job" if meta.get("timing", "").startswith("job") else "in this process"
        result.note += (f" Streaming (a causal student), timed {where} as its chunks were made, model loading excluded: "
                        "seconds from the start of sampling (prompt encoding included) until the first chunk's latents "
                        "were ready, and the clip's frames over the time until every chunk's were; latents only, "
                        "decoding excluded.")
    if meta.get("figures_note"):
        result.note += " " + meta["figures_note"]
    return result


def compare(data_dir: Path, public_dir: Path, base: str, prompt: str, seed, dmd2_key: str | None,
            dfd_key: str | None, steps: int = 50, guidance: float = 5.0, frame=None, num_frames=None,
            access: Access = LOCAL) -> CompareResult:
    """Sample in this process (cached by settings and weights). Raises ValueError / ModelError."""
    p = plan(data_dir, public_dir, base, prompt, seed, dmd2_key, dfd_key, steps, guidance, frame, num_frames, access)
    if not (p.folder / "meta.json").is_file():
        # a lent GPU on ZeroGPU (else as is), for as long as the clips' length asks
        render = on_gpu(lineup.render, sampling_seconds(1, p.steps, p.num_frames))
        rendered = {slot: render(c, p.prompt, [p.seed], steps=p.steps, guidance=p.guidance, image=p.image,
                                 num_frames=p.num_frames) for slot, c in p.contenders.items()}
        write_results(p, rendered)
    return read_results(p)


def queue(data_dir: Path, public_dir: Path, *request, access: Access = LOCAL
          ) -> tuple[CompareResult | None, sample_jobs.Pending | None]:
    """The job path: (cached result, None) when these settings were sampled before, else (None, pending jobs)."""
    p = plan(data_dir, public_dir, *request, access=access)
    return sample_jobs.queue(data_dir, p, p.request, list(p.contenders.values()), [p.seed], read_results,
                             before=lambda: access.check_queue(data_dir))


def poll(data_dir: Path, public_dir: Path, pending: sample_jobs.Pending) -> tuple[CompareResult | None, str]:
    """(result, "") once the jobs are done, else (None, how far they are). Raises ValueError."""
    return sample_jobs.finish(
        data_dir, pending, lambda *request: plan(data_dir, public_dir, *request),
        lambda p, rendered: write_results(p, dict(zip(p.contenders, rendered)), job_seconds=True), read_results,
    )


def _outputs(result: CompareResult) -> list:
    out = []
    for slot in SLOTS:
        out += [result.videos.get(slot), result.captions.get(slot, "")]
    return out + [result.composite, result.note]


def build(data_dir: Path, public_dir: Path, base: str = lineup.DEFAULT_BASE, access: Access = LOCAL):
    """The tab's components and events (call inside gr.Blocks); returns what app-level events need.
    access: which server folders and hub ids a visitor may name (studio/access.py)."""
    prompts = world.prompt_set("all")
    with gr.Row():
        base_box = gr.Dropdown(choices=[b for b in lineup.bases(data_dir, base) if access.allows_model(b)], value=base,
                               allow_custom_value=True, filterable=True, label="Base model", scale=2,
                               elem_id="compare-base",
                               info="the teacher; pick one or type a folder or hub id: its students are listed")
        prompt = gr.Dropdown(choices=prompts, value=prompts[0], allow_custom_value=True, label="Prompt", scale=3,
                             info="pick one of the world's prompts or type your own", elem_id="compare-prompt")
        seed = gr.Number(value=1, precision=0, minimum=0, label="Seed", scale=1)
    with gr.Row():
        dmd2 = StudentDropdown(label="DMD2 student", choices=[], scale=1, info="shipped or from a finished job",
                           elem_id="compare-dmd2-student")
        dfd = StudentDropdown(label="DFD student", choices=[], scale=1, info="shipped or from a finished job",
                          elem_id="compare-dfd-student")
        frame, world_button, follow_base = frames.picker(data_dir, base, prompt, "compare")
        with gr.Accordion("Sampling and where to run", open=False):
            steps = gr.Slider(1, 100, value=50, step=1, label="Teacher steps", info="Euler steps (paper: 50)")
            first = [next(iter(student_choices(data_dir, base, m)), (None, None))[1] for m in ("dmd2", "dfd")]
            start_cfg, why_cfg = lineup.teacher_cfg(data_dir, base, first)
            guidance = gr.Slider(1.0, 10.0, value=start_cfg, step=0.5, label="Teacher CFG", elem_id="compare-guidance",
                                 info=f"{CFG_INFO}set to {start_cfg:g}: {why_cfg}")
            num_frames = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_FRAMES, label="Video frames",
                                   elem_id="compare-frames",
                                   info="0: the model's own length (17 for the built-in world); 4k+1 frames, e.g. 65: "
                                        "a causal student goes on past its training length with a rolling KV cache, "
                                        "the teacher and a bidirectional student sample every frame at once")
            as_jobs = gr.Checkbox(engine.samples_in_jobs(base), label="Run as sample jobs", elem_id="compare-as-jobs",
                                  info="the worker samples (on for every base but the built-in world on a CPU); "
                                       "this page shows the result when done")
    run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    error = gr.Markdown(elem_id="compare-error")  # why the last Compare was refused; stays until the next one
    slot_outputs = []
    with gr.Row(equal_height=True):
        for slot in SLOTS:
            with gr.Column():
                title = "Teacher (50 steps, CFG)" if slot == "teacher" else f"{lineup.METHOD_NAMES[slot]} student (4 steps)"
                video = gr.Video(label=title, autoplay=True, loop=True, interactive=False, height=300,
                                 elem_id=f"compare-{slot}")
                caption = gr.Markdown(elem_id=f"compare-{slot}-caption")
                slot_outputs += [video, caption]
    # no label badge on the player: it would cover the teacher's label drawn into the composite's corner
    gr.Markdown("**Side by side (synchronized)**")
    composite = gr.Video(label="Side by side (synchronized)", show_label=False, autoplay=True, loop=True,
                         interactive=False, height=340, elem_id="compare-composite")
    note = gr.Markdown(elem_id="compare-note")
    pending = gr.State(None)
    last, load_js = recall.keeper("compare")
    poll_timer = gr.Timer(2.0, active=False)
    outputs = slot_outputs + [composite, note]

    def on_run(base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, as_jobs_v, frame_v=None, frames_v=0):
        request = (base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, frame_v, frames_v)
        try:
            access.check_model((base_v or "").strip())
            refusal = lineup.in_web_process_refusal((base_v or "").strip(), as_jobs_v)
            if refusal:
                raise ValueError(refusal)
            if not as_jobs_v:
                return [*_outputs(compare(data_dir, public_dir, *request, access=access)), None, gr.Timer(active=False)]
            result, queued = queue(data_dir, public_dir, *request, access=access)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        if result is not None:
            return [*_outputs(result), None, gr.Timer(active=False)]
        waiting = f"Queued sample jobs {', '.join(queued.job_ids)}; the result appears here when they are done."
        return [*(gr.skip() for _ in outputs[:-1]), waiting, queued, gr.Timer(active=True)]

    def on_click(*values):
        """on_run with a refusal shown in one lasting line under the button (a raised error would mark every
        output with an error badge and say why only in a passing toast); the request is remembered."""
        try:
            shown = on_run(*values)
        except gr.Error as err:
            return [*(gr.skip() for _ in outputs), gr.skip(), gr.skip(), f"**Cannot compare:** {err.message}",
                    gr.skip()]
        queued = shown[len(outputs)]
        request = queued.request["request"] if queued else plan(data_dir, public_dir, *values[:7], *values[8:],
                                                                 access=access).request  # checked by on_run
        return [*shown, "", recall.remembered(queued and queued.job_ids, request)]

    def on_poll(queued):
        if queued is None:
            return [*(gr.skip() for _ in outputs), None, gr.Timer(active=False)]
        try:
            result, progress = poll(data_dir, public_dir, queued)
        except (ValueError, ModelError) as err:
            return [*(gr.skip() for _ in outputs[:-1]), f"Stopped waiting: {err}.", None, gr.Timer(active=False)]
        if result is None:
            return [*(gr.skip() for _ in outputs[:-1]), progress, queued, gr.skip()]
        return [*_outputs(result), None, gr.Timer(active=False)]

    def refresh_students(base_v, dmd2_v, dfd_v):
        updates = []
        for method, current in (("dmd2", dmd2_v), ("dfd", dfd_v)):
            choices = student_choices(data_dir, base_v, method) if access.allows_model(base_v) else []
            keys = [k for _, k in choices]
            updates.append(gr.update(choices=choices, value=current if current in keys else (keys[0] if keys else None)))
        return updates

    def follow_students(base_v, dmd2_v, dfd_v):
        """The teacher CFG follows the chosen students: the CFG they were distilled with."""
        if not access.allows_model(base_v):
            return gr.update()
        value, why = lineup.teacher_cfg(data_dir, (base_v or "").strip(), [dmd2_v, dfd_v])
        return gr.update(value=value, info=f"{CFG_INFO}set to {value:g}: {why}")

    inputs = [base_box, prompt, seed, dmd2, dfd, steps, guidance]
    run.click(on_click, [*inputs, as_jobs, frame, num_frames], [*outputs, pending, poll_timer, error, last],
              api_visibility="private")
    poll_timer.tick(on_poll, [pending], [*outputs, pending, poll_timer], show_progress="hidden", api_visibility="private")
    # a picked or typed base lists its students at once (a typed one when Enter is pressed or the box is left)
    base_box.change(refresh_students, [base_box, dmd2, dfd], [dmd2, dfd], api_visibility="private")
    base_box.change(lambda base_v: gr.update(value=engine.samples_in_jobs((base_v or "").strip()))
                    if access.allows_model(base_v) else gr.update(), [base_box], [as_jobs], api_visibility="private")
    for student in (dmd2, dfd):
        student.change(follow_students, [base_box, dmd2, dfd], [guidance], show_progress="hidden",
                       api_visibility="private")

    def show_frame(base_v):
        """The first-frame box (and its world button) follow the base: shown for an image-to-video one, emptied
        and hidden otherwise."""
        return follow_base(base_v, access.allows_model(base_v))

    base_box.change(show_frame, [base_box], [frame, world_button], api_visibility="private")

    def on_load(base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v):
        """On open: the students known now, and the comparison of the first prompt (cached after the first time),
        sampled here only for the tiny built-in world on a CPU; other bases wait for Compare (sample jobs)."""
        dmd2_u, dfd_u = refresh_students(base_v, dmd2_v, dfd_v)
        # a refused base is not probed here: Compare says why
        if access.allows_model(base_v) and engine.samples_in_jobs((base_v or "").strip()):
            note = f"Press Compare: `{base_v}` is sampled by the worker as sample jobs, not when the page opens."
            return [dmd2_u, dfd_u, *([None, ""] * len(SLOTS)), None, note]
        guidance_v = lineup.teacher_cfg(data_dir, (base_v or "").strip(), [dmd2_u["value"], dfd_u["value"]])[0]
        try:
            shown = _outputs(compare(data_dir, public_dir, base_v, prompt_v, seed_v, dmd2_u["value"], dfd_u["value"],
                                     steps_v, guidance_v, access=access))
        except (ValueError, ModelError) as err:
            shown = [None, ""] * len(SLOTS) + [None, f"Could not sample: {err}"]
        return [dmd2_u, dfd_u, *shown]

    open_outputs = [*inputs, num_frames, *outputs, pending, poll_timer]

    def open_page(last_v, *values):
        """On open and after a reload: the last request's settings and result (read from the cache), or its
        sample jobs waited for again; with none (or one no longer valid), the first-open comparison (on_load)."""
        found = recall.recall(last_v, 9, lambda *request: plan(data_dir, public_dir, *request, access=access))
        if found is None:
            dmd2_u, dfd_u, *shown = on_load(*values)
            return [*(gr.skip() for _ in inputs[:3]), dmd2_u, dfd_u, gr.skip(), gr.skip(), gr.skip(), *shown, None,
                    gr.Timer(active=False)]
        request, p, job_ids = found
        base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, _, frames_v = request
        form = [base_v, prompt_v, seed_v, *refresh_students(base_v, dmd2_v, dfd_v), steps_v, guidance_v, frames_v or 0]
        if (p.folder / "meta.json").is_file():
            return [*form, *_outputs(read_results(p)), None, gr.Timer(active=False)]
        queued = sample_jobs.Pending(job_ids, {"request": request})
        return [*form, *(gr.skip() for _ in outputs[:-1]), recall.waiting(job_ids), queued, gr.Timer(active=True)]

    return {"inputs": inputs, "students": [dmd2, dfd], "outputs": outputs, "refresh_students": refresh_students,
            "on_load": on_load, "base": base_box, "as_jobs": as_jobs, "on_run": on_run, "on_click": on_click,
            "frame": frame, "show_frame": show_frame, "guidance": guidance, "follow_students": follow_students,
            "error": error, "last": last, "open_page": open_page, "load_js": load_js, "open_inputs": [last, *inputs],
            "open_outputs": open_outputs}
