"""DFD Studio's Gradio UI: one module per tab; each builds components and calls engine's public API."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from . import samples

TITLE = "DFD Studio"


def build_studio(data_dir: Path) -> gr.Blocks:
    """The whole app. Only `data_dir/public` is ever served as files (never the database or configs)."""
    public_dir = public_folder(data_dir)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Few-step video students by DMD2 and Data-Forcing Distillation (DFD). "
            "The built-in teacher `shapes-tiny` runs on a CPU; distillation, jobs and comparisons arrive in the next tabs."
        )
        with gr.Tab("Samples"):
            samples.build(public_dir, demo)
    return demo


def public_folder(data_dir: Path) -> Path:
    folder = Path(data_dir) / "public"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
