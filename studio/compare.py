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
process (the tiny built-in world: seconds). The request itself (its checks, cache, sampling and results) is
studio/compare_plan.py; this module is the page."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

import engine
from engine import ModelError, world

from . import frames, lineup, recall, sample_jobs
from .access import LOCAL, Access
from .choices import StudentDropdown, base_dropdown
from .compare_plan import MAX_FRAMES, CompareResult, compare, plan, poll, queue, read_results, student_choices
from .identity import LOCAL_OWNER, Identity, visitor_of

SLOTS = ("teacher", "dmd2", "dfd")
CFG_INFO = "uncond + s * (cond - uncond); "


def _outputs(result: CompareResult) -> list:
    out = []
    for slot in SLOTS:
        out += [result.videos.get(slot), result.captions.get(slot, "")]
    return out + [result.composite, result.note]


def build(
    data_dir: Path,
    public_dir: Path,
    base: str = lineup.DEFAULT_BASE,
    access: Access = LOCAL,
    identity: Identity = LOCAL_OWNER,
):
    """The tab's components and events (call inside gr.Blocks); returns what app-level events need.
    access: which server folders and hub ids a visitor may name (studio/access.py); identity: whose sample jobs
    these are and their cap (studio/identity.py)."""
    prompts = world.prompt_set("all")
    with gr.Row():
        base_box = base_dropdown(data_dir, base, access, "compare", "students")
        prompt = gr.Dropdown(
            choices=prompts,
            value=prompts[0],
            allow_custom_value=True,
            label="Prompt",
            scale=3,
            info="pick one of the world's prompts or type your own",
            elem_id="compare-prompt",
        )
        seed = gr.Number(value=1, precision=0, minimum=0, label="Seed", scale=1)
    with gr.Row():
        dmd2 = StudentDropdown(
            label="DMD2 student",
            choices=[],
            scale=1,
            info="shipped or from a finished job",
            elem_id="compare-dmd2-student",
        )
        dfd = StudentDropdown(
            label="DFD student",
            choices=[],
            scale=1,
            info="shipped or from a finished job",
            elem_id="compare-dfd-student",
        )
        frame, world_button, follow_base = frames.picker(data_dir, base, prompt, "compare")
        with gr.Accordion("Sampling and where to run", open=False):
            steps = gr.Slider(1, 100, value=50, step=1, label="Teacher steps", info="Euler steps (paper: 50)")
            first = [next(iter(student_choices(data_dir, base, m)), (None, None))[1] for m in ("dmd2", "dfd")]
            start_cfg, why_cfg = lineup.teacher_cfg(data_dir, base, first)
            guidance = gr.Slider(
                1.0,
                10.0,
                value=start_cfg,
                step=0.5,
                label="Teacher CFG",
                elem_id="compare-guidance",
                info=f"{CFG_INFO}set to {start_cfg:g}: {why_cfg}",
            )
            num_frames = gr.Number(
                value=0,
                precision=0,
                minimum=0,
                maximum=MAX_FRAMES,
                label="Video frames",
                elem_id="compare-frames",
                info="0: the model's own length (17 for the built-in world); 4k+1 frames, e.g. 65: "
                "a causal student goes on past its training length with a rolling KV cache, "
                "the teacher and a bidirectional student sample every frame at once",
            )
            as_jobs = gr.Checkbox(
                engine.samples_in_jobs(base),
                label="Run as sample jobs",
                elem_id="compare-as-jobs",
                info="the worker samples (on for every base but the built-in world on a CPU); "
                "this page shows the result when done",
            )
    run = gr.Button("Compare", variant="primary", elem_id="compare-run")
    error = gr.Markdown(elem_id="compare-error")  # why the last Compare was refused; stays until the next one
    slot_outputs = []
    with gr.Row(equal_height=True):
        for slot in SLOTS:
            with gr.Column():
                title = (
                    "Teacher (50 steps, CFG)" if slot == "teacher" else f"{lineup.METHOD_NAMES[slot]} student (4 steps)"
                )
                video = gr.Video(
                    label=title, autoplay=True, loop=True, interactive=False, height=300, elem_id=f"compare-{slot}"
                )
                caption = gr.Markdown(elem_id=f"compare-{slot}-caption")
                slot_outputs += [video, caption]
    # no label badge on the player: it would cover the teacher's label drawn into the composite's corner
    gr.Markdown("**Side by side (synchronized)**")
    composite = gr.Video(
        label="Side by side (synchronized)",
        show_label=False,
        autoplay=True,
        loop=True,
        interactive=False,
        height=340,
        elem_id="compare-composite",
    )
    note = gr.Markdown(elem_id="compare-note")
    pending = gr.State(None)
    last, load_js = recall.keeper("compare")
    poll_timer = gr.Timer(2.0, active=False)
    outputs = slot_outputs + [composite, note]

    def on_run(
        base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, as_jobs_v, frame_v=None, frames_v=0, visitor=None
    ):
        request = (base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, frame_v, frames_v)
        try:
            access.check_model((base_v or "").strip())
            refusal = lineup.in_web_process_refusal((base_v or "").strip(), as_jobs_v)
            if refusal:
                raise ValueError(refusal)
            if not as_jobs_v:
                return [*_outputs(compare(data_dir, public_dir, *request, access=access)), None, gr.Timer(active=False)]
            result, queued = queue(data_dir, public_dir, *request, access=access, identity=identity, visitor=visitor)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        if result is not None:
            return [*_outputs(result), None, gr.Timer(active=False)]
        waiting = f"Queued sample jobs {', '.join(queued.job_ids)}; the result appears here when they are done."
        return [*(gr.skip() for _ in outputs[:-1]), waiting, queued, gr.Timer(active=True)]

    def on_click(*values, visitor=None):
        """on_run with a refusal shown in one lasting line under the button (a raised error would mark every
        output with an error badge and say why only in a passing toast); the request is remembered."""
        try:
            shown = on_run(*values, visitor=visitor)
        except gr.Error as err:
            return [
                *(gr.skip() for _ in outputs),
                gr.skip(),
                gr.skip(),
                f"**Cannot compare:** {err.message}",
                gr.skip(),
            ]
        queued = shown[len(outputs)]
        request = (
            queued.request["request"]
            if queued
            else plan(data_dir, public_dir, *values[:7], *values[8:], access=access).request
        )  # checked by on_run
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
            updates.append(
                gr.update(choices=choices, value=current if current in keys else (keys[0] if keys else None))
            )
        return updates

    def list_students(base_v, dmd2_v, dfd_v):
        """The lists when the tab is opened, each value left alone while it is in its list: a tab opened while a
        reload's restore (open_page) is on its way sends the values from before it, which must not overwrite the
        restored ones."""
        updates = refresh_students(base_v, dmd2_v, dfd_v)
        return [gr.update(choices=u["choices"]) if u["value"] == v else u for u, v in zip(updates, (dmd2_v, dfd_v))]

    def follow_students(base_v, dmd2_v, dfd_v):
        """The teacher CFG follows the chosen students: the CFG they were distilled with."""
        if not access.allows_model(base_v):
            return gr.update()
        value, why = lineup.teacher_cfg(data_dir, (base_v or "").strip(), [dmd2_v, dfd_v])
        return gr.update(value=value, info=f"{CFG_INFO}set to {value:g}: {why}")

    def on_click_as(request: gr.Request, *values):  # gradio hands the request to a leading parameter only
        return on_click(*values, visitor=visitor_of(request))

    inputs = [base_box, prompt, seed, dmd2, dfd, steps, guidance]
    run.click(
        on_click_as,
        [*inputs, as_jobs, frame, num_frames],
        [*outputs, pending, poll_timer, error, last],
        api_visibility="private",
    )
    poll_timer.tick(
        on_poll, [pending], [*outputs, pending, poll_timer], show_progress="hidden", api_visibility="private"
    )
    # a picked or typed base lists its students at once (a typed one when Enter is pressed or the box is left)
    base_box.change(refresh_students, [base_box, dmd2, dfd], [dmd2, dfd], api_visibility="private")
    base_box.change(
        lambda base_v: (
            gr.update(value=engine.samples_in_jobs((base_v or "").strip()))
            if access.allows_model(base_v)
            else gr.update()
        ),
        [base_box],
        [as_jobs],
        api_visibility="private",
    )
    for student in (dmd2, dfd):
        student.change(
            follow_students, [base_box, dmd2, dfd], [guidance], show_progress="hidden", api_visibility="private"
        )

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
            shown = _outputs(
                compare(
                    data_dir,
                    public_dir,
                    base_v,
                    prompt_v,
                    seed_v,
                    dmd2_u["value"],
                    dfd_u["value"],
                    steps_v,
                    guidance_v,
                    access=access,
                )
            )
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
            return [
                *(gr.skip() for _ in inputs[:3]),
                dmd2_u,
                dfd_u,
                gr.skip(),
                gr.skip(),
                gr.skip(),
                *shown,
                None,
                gr.Timer(active=False),
            ]
        request, p, job_ids = found
        base_v, prompt_v, seed_v, dmd2_v, dfd_v, steps_v, guidance_v, _, frames_v = request
        form = [base_v, prompt_v, seed_v, *refresh_students(base_v, dmd2_v, dfd_v), steps_v, guidance_v, frames_v or 0]
        if (p.folder / "meta.json").is_file():
            return [*form, *_outputs(read_results(p)), None, gr.Timer(active=False)]
        queued = sample_jobs.Pending(job_ids, {"request": request})
        return [*form, *(gr.skip() for _ in outputs[:-1]), recall.waiting(job_ids), queued, gr.Timer(active=True)]

    return {
        "inputs": inputs,
        "students": [dmd2, dfd],
        "outputs": outputs,
        "refresh_students": refresh_students,
        "list_students": list_students,
        "on_load": on_load,
        "base": base_box,
        "as_jobs": as_jobs,
        "on_run": on_run,
        "on_click": on_click,
        "frame": frame,
        "show_frame": show_frame,
        "guidance": guidance,
        "follow_students": follow_students,
        "error": error,
        "last": last,
        "open_page": open_page,
        "load_js": load_js,
        "open_inputs": [last, *inputs],
        "open_outputs": open_outputs,
    }
