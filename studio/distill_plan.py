"""The Distill tab's memory and time plan, before Launch: for the form's settings, the peak device memory of
each stage of the run with its parts (weights, LoRA + optimizer, activations, temporaries) and the host
memory it needs, whether the run fits the chosen GPU, and its step time and hours at a stated MFU
(engine.plan_of_config, planned on fake tensors at the base's real config). Planning a new setting takes
minutes of CPU, so it runs when asked (the Plan button, one at a time) and never on a form change; a plan
is kept by its settings, so asking again is instant."""

from __future__ import annotations

import gradio as gr

import engine

from .distill_request import KNOBS, SETTINGS

PARTS = (("weights", "weights"), ("lora_optimizer", "LoRA + optimizer"), ("activations", "activations"))
STAGE_NAMES = {
    "text_encoding": "text encoding (once, then the encoder is freed)",
    "latent_encoding": "latent encoding (one clip)",
    "fake_update": "fake-score update",
    "student_update_dmd2": "student update (DMD2)",
    "student_update_dfd": "student update (DFD, real-clip branch)",
    "sampling": "sampling (one step)",
    "preview_decode": "preview decode (tiled)",
}
GiB = 2**30


def config_of_form(form: dict):
    """The DistillConfig of the form's base, method, task and knobs (the data and the student to start from
    do not change the plan); raises ValueError with the setting that is wrong."""
    settings = {name: form.get(name) for name in ("base", "method", "task")}
    settings["base"] = (settings["base"] or "").strip()
    for name in KNOBS:
        value = form.get(name)
        settings[name] = bool(value) if SETTINGS[name].kind == "bool" else value
    return engine.build_distill_config(values=settings, check=False)


def plan_markdown(form: dict, gpu: str, mfu_percent: float) -> str:
    """The plan of the form's run on `gpu` at `mfu_percent` % MFU as markdown, or what stops it being planned."""
    try:
        config = config_of_form(form)
        plan = engine.plan_of_config(config, gpu, (mfu_percent or 0) / 100)
    except (ValueError, engine.ConfigError) as err:
        return f"**Cannot plan:** {err}"
    spec = plan["spec"]
    rows = [
        "| stage | " + " | ".join(label for _, label in PARTS) + " | temporaries | peak | host |",
        "|---|" + "---:|" * (len(PARTS) + 3),
    ]
    for s in plan["stages"]:
        cells = [f"{s['parts'][p] / GiB:.2f}" for p, _ in PARTS] + [f"{s['parts']['temporaries'] / GiB:.2f}"]
        rows.append(
            f"| {STAGE_NAMES.get(s['name'], s['name'])} | "
            + " | ".join(cells)
            + f" | **{s['peak'] / GiB:.2f}** | {s['host'] / GiB:.1f} |"
        )
    peak, memory = plan["peak_bytes"] / GiB, plan["gpu_memory"] / GiB
    verdict = "fits" if plan["fits"] else "does **not** fit"
    lines = [
        f"`{spec['base']}` {spec['task']}, {spec['frames']}x{spec['height']}x{spec['width']}, batch "
        f"{spec['batch']} per GPU, {spec['precision']}, gradient checkpointing "
        f"{'on' if spec['gradient_checkpointing'] else 'off'}, LoRA rank {spec['rank']}; GiB per GPU:",
        "",
        *rows,
        "",
        f"**Run peak {peak:.1f} GiB: {verdict}** a {plan['gpu']} ({memory:.0f} GiB, 92% usable).",
    ]
    if plan["step_seconds"]:
        swap = plan.get("transfer_seconds") or 0
        lines.append(
            f"**{plan['step_seconds']:.1f} s per step** at {plan['mfu']:.0%} MFU "
            f"({plan['step_flops'] / 1e12:,.0f} TFLOP per step"
            + (f"; {swap:.1f} s of it block swap's copies at the link's nominal rate" if swap else "")
            + f"): {plan['steps']} steps in about **{plan['hours']:.1f} h** on one {plan['gpu']}."
        )
    notes = [f"- {STAGE_NAMES.get(s['name'], s['name'])}: {s['note']}" for s in plan["stages"] if s.get("note")]
    if notes:  # what the command line prints under its table: block swap, the sharding's share
        lines += ["", "Notes:", *notes, ""]
    lines.append(
        "Planned on fake tensors at the base's real config, not measured; text encoding runs once before "
        "training and its encoder is freed, so the run peak is the highest other stage."
    )
    return "\n".join(lines)


def build(form_components: list, form_names: list[str]) -> None:
    """The plan's accordion: GPU, MFU, the Plan button and the table; `form_components` in `form_names` order."""
    with gr.Accordion("Memory and time plan (before you launch)", open=False, elem_id="distill-plan"):
        with gr.Row():
            gpu = gr.Dropdown(list(engine.PLAN_GPUS), value="4090", label="GPU", elem_id="distill-plan-gpu")
            mfu = gr.Number(
                value=round(engine.PLAN_DEFAULT_MFU * 100),
                label="MFU %",
                info="share of the GPU's peak bf16 throughput the run reaches",
                elem_id="distill-plan-mfu",
            )
            button = gr.Button("Plan", elem_id="distill-plan-button")
        gr.Markdown(
            "Peak memory of each stage, whether the run fits the GPU, and its hours. A new setting takes a few "
            "minutes of CPU to plan; the same settings again are instant."
        )
        table = gr.Markdown(elem_id="distill-plan-table")

    def on_plan(gpu_v, mfu_v, *values):
        return plan_markdown(dict(zip(form_names, values)), gpu_v, mfu_v)

    button.click(
        on_plan,
        [gpu, mfu] + list(form_components),
        [table],
        concurrency_limit=1,
        concurrency_id="distill-plan",
        api_visibility="private",
    )
