"""The first frame of an image-to-video request in Compare and Diversity: whether the chosen base takes one,
and the uploaded image kept in the data folder under a name made from its pixels.

Kept, not read from gradio's upload cache, because sample jobs read it later in the worker's process; named
by its pixels, so every model of a request starts from the same file and the same frame uploaded again
finds its cached results."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import engine
from engine import ModelError

LABEL = "First frame"  # the component's label, as refusals name it


def base_task(base: str, fetch: bool = True) -> str | None:
    """ "t2v", "i2v" or "ti2v" (both: a frame-replacement base, Wan2.2-TI2V, takes a first frame or none)
    from the base's files, None when they cannot tell. fetch: a hub id's model_index.json is fetched first
    when the Hub cache lacks it (ValueError when it cannot be). Call only for a base the visitor may name
    (studio/access.py)."""
    base = (base or "").strip()
    try:
        tasks = engine.base_tasks(base)
        if tasks is None and fetch and engine.resolve_model(base)[0] == "hub":
            engine.check_model(base)  # into the cache, where base_tasks reads it
            tasks = engine.base_tasks(base)
    except ModelError as err:
        raise ValueError(str(err)) from None
    if tasks is None:
        return None
    return "ti2v" if len(tasks) > 1 else tasks[0]


def refusal(base: str, task: str | None, frame) -> str | None:
    """Why a frame and a base do not go together, or None (an unknown task is left to the sampler)."""
    if task == "t2v" and frame:
        return f"{base} is a text-to-video model: remove the {LABEL.lower()}, or pick an image-to-video base"
    if task == "i2v" and not frame:
        return (
            f"{base} is an image-to-video model: upload a {LABEL.lower()} for the teacher and every student "
            "to start from"
        )
    return None


def check_students(contenders, image: Path | None) -> None:
    """An image-to-video student (its lora_config.json's task) given no frame, which only a TI2V base (it
    samples from text too) lets through: refused in one line, as it was trained to start from a frame."""
    if image is not None:
        return
    for contender in contenders:
        if (contender.info or {}).get("task") == "i2v":
            raise ValueError(
                f"{contender.label} is an image-to-video student: upload a {LABEL.lower()} for every model "
                "to start from, or pick a text-to-video student"
            )


def store(data_dir: str | Path, uploaded: str | Path) -> Path:
    """The uploaded image as <data_dir>/uploads/frames/<pixel hash>.png (RGB), written once, atomically.
    ValueError in one line when it is not an image."""
    path = Path(uploaded)
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # not an image, truncated, or too large
        raise ValueError(
            f"the {LABEL.lower()} {path.name} is not an image this studio can read "
            f"({type(err).__name__}); upload a PNG or JPG"
        ) from None
    digest = hashlib.sha256(repr(rgb.size).encode() + rgb.tobytes()).hexdigest()[:16]
    target = Path(data_dir) / "uploads" / "frames" / f"{digest}.png"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        rgb.save(tmp, format="PNG")
        os.replace(tmp, target)
    return target


def world_frame(data_dir: str | Path, prompt: str) -> Path:
    """The first frame the built-in world draws for this caption (the one an evaluation of the prompt starts
    from), stored as an upload is, with its clip's factors beside it (<name>.json) so the Diversity table can
    measure motion modes against the truth. ValueError when the prompt is not a caption of the world."""
    import json
    from dataclasses import asdict

    try:
        clip = engine.world.conditioning_clip(prompt or "")
    except ValueError as err:
        raise ValueError(f"{err}; or upload a {LABEL.lower()}") from None
    folder = Path(data_dir) / "uploads" / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:  # one per call: the web server runs requests in threads
        drawn = Path(scratch) / "world.png"
        Image.fromarray(engine.world.render(clip)[0]).save(drawn, format="PNG")
        target = store(data_dir, drawn)
        sidecar = target.with_suffix(".json")
        if not sidecar.is_file():  # written whole, then renamed: a reader never sees half of it
            (Path(scratch) / "factors.json").write_text(json.dumps(asdict(clip)))
            os.replace(Path(scratch) / "factors.json", sidecar)
    return target


def factors_of(image: Path | None) -> dict | None:
    """For a stored first frame: the world clip's factors when it came from world_frame, else {} (an upload:
    factors unknown); None for no frame (a text-to-video request)."""
    import json

    if image is None:
        return None
    sidecar = Path(image).with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


def checked(data_dir: str | Path, base: str, frame) -> Path | None:
    """The request's first frame, stored, or None for a text-to-video request; ValueError in one line when
    the frame and the base do not go together or the frame is not an image."""
    reason = refusal(base, base_task(base), frame)
    if reason:
        raise ValueError(reason)
    return store(data_dir, frame) if frame else None


def shown(base: str) -> bool:
    """Whether the page shows the first-frame box for this base: unless its files say text-to-video (a hub
    id not in the cache is not fetched for this)."""
    try:
        engine.resolve_model((base or "").strip())  # a name that is no model shows none
        return base_task(base, fetch=False) != "t2v"
    except (ValueError, ModelError):
        return False


def from_world_shown(base: str) -> bool:
    """Whether "Frame from the world" is offered: an image-to-video base of the built-in world."""
    return shown(base) and engine.world_of((base or "").strip()) == "shapes"


def picker(data_dir: Path, base: str, prompt, tab: str):
    """The first-frame box and its "Frame from the world" button (call inside gr.Blocks, in a row); the
    button puts the world's frame for the chosen prompt in the box. Returns (frame, button, follow_base):
    follow_base(base, allowed) gives both components' updates when the base changes (allowed: may this
    visitor use that base at all)."""
    import gradio as gr

    with gr.Column(scale=1, min_width=160):
        frame = gr.Image(
            type="filepath",
            sources=["upload"],
            label=LABEL,
            visible=shown(base),
            height=160,
            format="png",
            elem_id=f"{tab}-frame",
        )  # image-to-video bases: every model and seed starts from it
        button = gr.Button(
            "Frame from the world", size="sm", visible=from_world_shown(base), elem_id=f"{tab}-world-frame"
        )

    def pick(prompt_v):
        """The frame's pixels (the page serves only the public folder; gradio keeps its own copy, whose pixels
        find the stored frame and its factors again when the request is made)."""
        try:
            with Image.open(world_frame(data_dir, prompt_v)) as image:
                return np.asarray(image.convert("RGB"))
        except ValueError as err:
            raise gr.Error(str(err)) from None

    button.click(pick, [prompt], [frame], api_visibility="private")

    def follow_base(base_v, allowed: bool):
        visible = allowed and shown(base_v)
        return (
            gr.update(visible=True) if visible else gr.update(visible=False, value=None),
            gr.update(visible=visible and from_world_shown(base_v)),
        )

    return frame, button, follow_base
