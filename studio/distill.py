"""The Distill tab: base model, data, method and the main knobs (the paper's defaults, one line of help
each, the built-in world's preset for shapes-tiny). Every change is checked at once and a bad choice is
explained beside Launch; Launch queues a `distill` job only when the check passes. The form's request logic
(what the values mean, the check, the launch) is studio/distill_request.py; this module lays out the
controls, as DistillConfig's field metadata describes them, and wires their events."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

import engine
from engine import SHAPES_PRESET

from . import distill_plan, distill_target, lineup, zerogpu
from .access import LOCAL, Access
from .distill_data import (
    CONFIG_TYPES,
    DATA_SOURCES,
    FOLDER_INFO,
    folder_note,
    upload_data,
    upload_data_config,
)
from .distill_request import (
    ADVANCED_KNOBS,
    FORM,
    KNOBS,
    MAIN_KNOBS,
    SETTINGS,
    check,
    defaults_for,
    form_from_config,
    init_choices,
    init_rank,
    launch,
    task_for_base,
    upload_lora,
)

# the queue group of every form check (one at a time, in the order asked)
CHECKS = "distill-check"
METHODS = [("DMD2 from the teacher", "dmd2"), ("DFD on a DMD2 student", "dfd")]
# How the form names DistillConfig.task's choices; a choice without a name here shows as itself.
TASK_NAMES = {
    "t2v": "text-to-video",
    "i2v": "image-to-video (each real clip's first frame)",
    "ar": "autoregressive text-to-video (chunk by chunk)",
}
INIT_SOURCES = [("a finished DMD2 student", "student"), ("an uploaded LoRA", "upload")]


def _knob(name: str, value):
    """The form's input for one DistillConfig field, as its metadata describes it."""
    setting = SETTINGS[name]
    common = dict(label=name.replace("_", " "), info=setting.help, elem_id=f"distill-{name}")
    if setting.choices:
        return gr.Dropdown(list(setting.choices), value=value, **common)
    if setting.kind == "bool":
        return gr.Checkbox(value=value, **common)
    if setting.kind == "floats":
        return gr.Textbox(value=", ".join(f"{v:g}" for v in value), **common)
    return gr.Number(value=value, precision=0 if setting.kind == "int" else None, **common)


def when_dfd_helps() -> str:
    """When to use DFD, with the study's figures as the engine words them from docs/results/*.json (so the tab
    never quotes figures the results do not hold)."""
    return engine.study_summary()


def build(data_dir: Path, base: str = lineup.DEFAULT_BASE, access: Access = LOCAL):
    defaults = defaults_for(base)
    gr.Markdown(f"**{zerogpu.TRAINING_NOTE}**", visible=zerogpu.on_zerogpu(), elem_id="distill-zerogpu")
    gr.Markdown(
        "**Start here:** pick the method (and for DFD the DMD2 student it starts from), set the steps, "
        "press Launch; every other knob has the paper's default.",
        elem_id="distill-start",
    )
    knobs = {}
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            method = gr.Radio(
                METHODS,
                value="dmd2",
                label=SETTINGS["method"].label,
                info=SETTINGS["method"].help,
                elem_id="distill-method",
            )
            init_source = gr.Radio(INIT_SOURCES, value="student", label=SETTINGS["init"].label, visible=False)
            init_student = gr.Dropdown(
                label="DMD2 student",
                choices=init_choices(data_dir, base),
                visible=False,
                info=SETTINGS["init"].help,
                elem_id="distill-init",
            )
            init_upload = gr.File(
                label="Student LoRA (.safetensors or a zip of the student folder)",
                file_types=[".safetensors", ".zip"],
                type="filepath",
                visible=False,
                height=120,
            )
            init_note = gr.Markdown()
        with gr.Column(scale=3, min_width=280):
            base_box = gr.Dropdown(
                list(engine.BUILTIN_MODELS),
                value=base,
                allow_custom_value=True,
                label=SETTINGS["base"].label,
                info=SETTINGS["base"].help,
                elem_id="distill-base",
            )
            data_source = gr.Radio(
                DATA_SOURCES,
                value="shapes",
                label=SETTINGS["data"].label,
                info="real videos with captions the student is forced towards",
            )
            data_folder = gr.Textbox(
                label="Data folder or data-set config", visible=False, elem_id="distill-data-folder", info=FOLDER_INFO
            )
            data_config = gr.File(
                label="or upload a data-set config (its folders as absolute paths on this machine)",
                file_types=CONFIG_TYPES,
                type="filepath",
                visible=False,
                height=120,
                elem_id="distill-data-config-upload",
            )
            data_zip = gr.File(
                label="Zip of videos with captions", file_types=[".zip"], type="filepath", visible=False, height=120
            )
            data_note = gr.Markdown()
        with gr.Column(scale=2, min_width=240):
            knobs["steps"] = _knob("steps", defaults["steps"])
            launch_button = gr.Button("Launch", variant="primary", elem_id="distill-launch")
            check_box = gr.Markdown(elem_id="distill-check")
            launched = gr.Markdown(elem_id="distill-launched")
            target = distill_target.build()  # under Launch: its HF Jobs details would push Launch off the screen
    task = gr.Radio(
        [(TASK_NAMES.get(c, c), c) for c in SETTINGS["task"].choices],
        value=defaults["task"],
        label="Task",
        info=SETTINGS["task"].help + "; follows the base when its files tell",
        elem_id="distill-task",
    )
    preset = ", ".join(f"{k} {v}" for k, v in SHAPES_PRESET.items())
    gr.Markdown(f"Defaults are the paper's recipe; for the built-in teachers the world's preset replaces {preset}.")
    with gr.Row():
        for name in MAIN_KNOBS[1:7]:
            knobs[name] = _knob(name, defaults[name])
    with gr.Row():
        for name in MAIN_KNOBS[7:]:
            knobs[name] = _knob(name, defaults[name])
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            for name in ADVANCED_KNOBS:
                knobs[name] = _knob(name, defaults[name])
    form_components = [base_box, data_source, data_folder, method, task, init_source, init_student] + [
        knobs[n] for n in KNOBS
    ]
    distill_plan.build(form_components, FORM)
    with gr.Accordion("Load a run config (.yaml/.toml/.json) into the form", open=False, elem_id="distill-config"):
        config_upload = gr.File(
            label="Run config",
            type="filepath",
            file_types=[".yaml", ".yml", ".toml", ".json"],
            height=120,
            elem_id="distill-config-upload",
        )
        config_note = gr.Markdown(elem_id="distill-config-note")
    with gr.Accordion("When DFD helps (measured on the built-in world)", open=False, elem_id="distill-when-dfd"):
        gr.Markdown(when_dfd_helps())
    uploaded_data = gr.State(None)
    uploaded_lora = gr.State(None)
    loaded_config = gr.State(None)  # the uploaded config's values, which a base change keeps for its base

    def as_form(values) -> dict:
        return dict(zip(FORM, values))

    def on_check(data_state, lora_state, *values):
        return check(data_dir, as_form(values), data_state, lora_state, access)

    def on_launch(data_state, lora_state, *values, submitted_by=None, request=None):
        form, where = as_form(values[: len(FORM)]), values[len(FORM) :]
        started = distill_target.launch(data_dir, form, data_state, lora_state, where, access, submitted_by, request)
        return started or launch(data_dir, form, data_state, lora_state, access, submitted_by)

    def on_layout(source, method_v, init_v, base_v, current_init):
        choices = init_choices(data_dir, base_v) if access.allows_model(base_v) else []  # a refused path: not probed
        keys = [k for _, k in choices]
        dfd = method_v == "dfd"
        info = (
            SETTINGS["init"].help
            if keys
            else "no finished DMD2 student of this base yet: launch a DMD2 job first, or upload a LoRA"
        )
        return (
            gr.update(visible=source == "folder"),
            gr.update(visible=source == "folder"),
            gr.update(visible=source == "upload"),
            gr.update(visible=dfd),
            gr.update(
                visible=dfd and init_v == "student",
                choices=choices,
                info=info,
                value=current_init if current_init in keys else (keys[0] if keys else None),
            ),
            gr.update(visible=dfd and init_v == "upload"),
        )

    def on_base(base_v, loaded, task_v):
        values = loaded if loaded and loaded.get("base") == base_v else defaults_for(base_v)
        allowed = access.allows_model(base_v)  # a refused folder is not read, nor its task told
        task_now = task_for_base(base_v, task_v) if allowed else task_v  # from the base's files, without torch
        return [gr.update(value=values[n]) for n in KNOBS if n in SHAPES_PRESET] + [gr.update(value=task_now)]

    def on_init(base_v, key, rank_v):
        try:
            allowed = key and access.allows_model(base_v)
            rank = init_rank(str(lineup.find(data_dir, (base_v or "").strip(), key).lora_dir)) if allowed else None
        except ValueError:
            rank = None
        return gr.update(value=rank if rank is not None else rank_v)

    init_student.change(
        on_init, [base_box, init_student, knobs["lora_rank"]], [knobs["lora_rank"]], api_visibility="private"
    )
    uploaded_lora.change(
        lambda folder, rank_v: gr.update(value=init_rank(folder) or rank_v),
        [uploaded_lora, knobs["lora_rank"]],
        [knobs["lora_rank"]],
        api_visibility="private",
    )

    layout_inputs = [data_source, method, init_source, base_box, init_student]
    layout_outputs = [data_folder, data_config, data_zip, init_source, init_student, init_upload]
    check_inputs = [uploaded_data, uploaded_lora] + form_components
    for component in (data_source, method, init_source, base_box):
        component.change(on_layout, layout_inputs, layout_outputs, api_visibility="private")
    base_box.change(
        on_base,
        [base_box, loaded_config, task],
        [knobs[n] for n in KNOBS if n in SHAPES_PRESET] + [task],
        api_visibility="private",
    )
    # A changed form: a fresh check, and the last launch message goes. One event for every field, and every
    # check in one queue group: checks run one at a time in the order asked, so the text shown is always that
    # of the form's latest values (per-field events ran side by side, and a slow check of an older value could
    # land last and say the form was something it no longer is).
    gr.on(
        [component.change for component in form_components],
        lambda *v: (on_check(*v), ""),
        check_inputs,
        [check_box, launched],
        show_progress="hidden",
        api_visibility="private",
        trigger_mode="always_last",
        concurrency_id=CHECKS,
    )
    scan_inputs = [base_box, knobs["num_frames"], knobs["windows_per_video"]]
    data_zip.change(
        lambda p, *v: upload_data(data_dir, p, *v, access=access),
        [data_zip] + scan_inputs,
        [uploaded_data, data_note],
        api_visibility="private",
    ).then(on_check, check_inputs, [check_box], api_visibility="private", concurrency_id=CHECKS)

    def on_data_config(path, *scan_values):  # the kept copy's path goes in the data box, whose change checks it
        saved, note = upload_data_config(data_dir, path, *scan_values, access=access)
        return (gr.update(value=saved) if saved else gr.skip()), note

    data_config.upload(on_data_config, [data_config] + scan_inputs, [data_folder, data_note], api_visibility="private")
    for event in (data_folder.blur, data_folder.submit):  # a scan reads every video's header: not per keystroke
        event(
            lambda f, *v: folder_note(f, *v, access=access),
            [data_folder] + scan_inputs,
            [data_note],
            api_visibility="private",
        ).then(on_check, check_inputs, [check_box], api_visibility="private", concurrency_id=CHECKS)
    filled = [base_box, data_source, data_folder, method, task] + [knobs[n] for n in KNOBS]

    def on_config(path, base_v):
        values, note = form_from_config(path, base_v, access, data_dir)
        if values is None:  # nothing loaded, or a refused file: the form keeps its values
            return [gr.skip(), note] + [gr.skip()] * len(filled)
        return [values, note] + [gr.update(value=values[n]) for n in FORM if n not in ("init_source", "init_student")]

    config_upload.upload(
        on_config, [config_upload, base_box], [loaded_config, config_note] + filled, api_visibility="private"
    )
    init_upload.change(
        lambda p: upload_lora(data_dir, p), [init_upload], [uploaded_lora, init_note], api_visibility="private"
    ).then(on_check, check_inputs, [check_box], api_visibility="private", concurrency_id=CHECKS)
    return {
        "launch": launch_button,
        "launch_fn": on_launch,
        "base_fn": on_base,
        "launch_inputs": check_inputs + target["inputs"],
        "launched": launched,
        "check": check_box,
        "check_fn": on_check,
        "check_group": CHECKS,
        "layout_fn": on_layout,
        "layout_inputs": layout_inputs,
        "layout_outputs": layout_outputs,
        "config_fn": on_config,
        "config_outputs": [loaded_config, config_note] + filled,
    }
