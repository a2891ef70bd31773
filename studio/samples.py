"""The Samples tab: generate videos with the built-in teacher (or any base model) from a prompt."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr

from engine import world
from engine.generate import SampleConfig, generate
from engine.models import ModelError, load_base_model

_models: dict[str, object] = {}
_lock = threading.Lock()  # one sampling at a time: the CPU has two cores, and models are shared


def _model(name: str):
    if name not in _models:
        _models[name] = load_base_model(name)
    return _models[name]


def run_samples(public_dir: Path, base: str, prompt: str, seeds: int, steps: int, guidance: float):
    """Generate `seeds` videos; returns (list of mp4 paths, a one-line summary). Raises gr.Error."""
    cfg = SampleConfig(base=base, prompt=prompt, seeds=list(range(1, int(seeds) + 1)), steps=int(steps),
                       guidance=float(guidance), scale=4)
    try:
        cfg.validate()
        with _lock:
            model = _model(base)
            out = public_dir / "samples" / time.strftime("%Y%m%d-%H%M%S")
            result = generate(cfg, out, model=model)
    except (ValueError, ModelError) as err:
        raise gr.Error(str(err)) from None
    summary = f"{len(result.paths)} videos, {result.nfe} network evaluations each, {result.seconds:.2f} s in all"
    return [str(p) for p in result.paths], summary


def initial_samples(public_dir: Path, base: str, prompt: str):
    """What the page shows on open: the built-in teacher's samples of the first prompt, made once and
    kept in the public folder (later page loads reuse them)."""
    cached = public_dir / "previews" / "teacher-first-prompt"
    if not sorted(cached.glob("*.mp4")):
        with _lock:
            generate(SampleConfig(base=base, prompt=prompt, seeds=[1, 2, 3, 4], steps=50, scale=4), cached,
                     model=_model(base))
    paths = [str(p) for p in sorted(cached.glob("*.mp4"))]
    return paths, f"The built-in teacher `{base}`, 50 steps with CFG 5: *{prompt}*, seeds 1-4."


def build(public_dir: Path, demo: gr.Blocks) -> None:
    """The tab's components and callbacks (call inside a gr.Blocks context)."""
    prompts = world.prompt_set("all")
    with gr.Row():
        with gr.Column(scale=2):
            base = gr.Textbox(value="shapes-tiny", label="Base model",
                              info="shapes-tiny (built in), a local diffusers folder, or a hub id")
            prompt = gr.Dropdown(choices=prompts, value=prompts[0], allow_custom_value=True, label="Prompt",
                                 info="pick a world prompt or type your own")
        with gr.Column(scale=1):
            seeds = gr.Slider(1, 8, value=4, step=1, label="Seeds", info="videos to generate (seeds 1..N)")
            steps = gr.Slider(1, 100, value=50, step=1, label="Steps", info="teacher sampling steps")
            guidance = gr.Slider(1.0, 10.0, value=5.0, step=0.5, label="CFG scale")
    button = gr.Button("Generate", variant="primary")
    summary = gr.Markdown()
    gallery = gr.Gallery(label="Samples", columns=4, height="auto", elem_id="samples-gallery")
    button.click(
        lambda *a: run_samples(public_dir, *a), [base, prompt, seeds, steps, guidance], [gallery, summary]
    )
    demo.load(lambda: initial_samples(public_dir, "shapes-tiny", prompts[0]), None, [gallery, summary])
