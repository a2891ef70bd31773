"""The first frames an evaluation of an image-to-video base outside the shapes world samples from: one per prompt,
given by the user, the same for every model and seed (as the shapes world's own frame is), so the seeds' spread is
the motion spread from one frame.

A prompt's frame is the JSONL row's "image" (relative to the prompt file) or, with a frames folder, the image there
named after the prompt: its words in lower case joined by hyphens ("A red cat, running" -> a-red-cat-running.png).
Every prompt's frame is found and read before anything is sampled; each problem is one line naming the prompt and
the file, and what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .prompts import EvalPrompt

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def frame_name(prompt: str) -> str:
    """The file stem a frames folder holds a prompt's first frame under."""
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")


def user_frames_given(settings, prompts: list[EvalPrompt]) -> bool:
    """Whether the user gives first frames: a frames folder or a prompt's image."""
    return settings.frames is not None or any(p.image is not None for p in prompts)


def frame_paths(prompts: list[EvalPrompt], folder: str | None) -> dict[str, Path]:
    """prompt text -> its first frame's file; ValueError naming the first prompt that has none."""
    paths = {}
    for p in prompts:
        if p.image is not None:
            paths[p.text] = Path(p.image)
            continue
        stem = frame_name(p.text)
        found = [Path(folder) / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES] if folder else []
        found = [path for path in found if path.is_file()]
        if not found:
            where = f"no {stem}.png (or .jpg, .webp) in {folder}" if folder else "no frames folder is given"
            raise ValueError(
                f'the prompt {p.text!r} has no first frame ({where}): give it an "image" in a JSONL prompt file, '
                f"or put {stem}.png in the folder of --frames"
            )
        paths[p.text] = found[0]
    for text, path in paths.items():
        if not path.is_file():
            raise ValueError(f"the first frame of the prompt {text!r} is {path}, which is not a file; fix its path")
    return paths


def read_frames(paths: dict[str, Path], height: int, width: int) -> dict[str, np.ndarray]:
    """prompt text -> uint8 (H, W, 3) frame at the evaluation's video size (resized as `sample --image` does)."""
    # torch (through conditioning): only once a model is loaded, so the command's checks stay light
    from ..models.conditioning import read_first_frame

    frames = {}
    for text, path in paths.items():
        try:
            frames[text] = read_first_frame(path, height, width)
        except ValueError as err:
            raise ValueError(f"the first frame of the prompt {text!r}: {err}") from None
    return frames
