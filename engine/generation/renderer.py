"""Sampling for a long-lived process that shows results (the studio's Compare, Diversity and Publish
tabs): one loaded model per base, shared by the teacher and all its students, and one sampling at a time.

A base is reloaded when its transformer weights change on disk (a teacher being retrained), and when a
student's LoRA file changes (its adapter is loaded afresh on a fresh model), so a page never shows what
old weights made. `weights_version` names those weights for callers that cache results by them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config.sample import SampleConfig
from ..core.files import LORA_FILE, LOW_NOISE_LORA_FILE
from ..core.hardware import accelerator_present
from ..models.names import ModelError, base_world, resolve_model


@dataclass
class Rendered:
    clips: np.ndarray  # uint8 (seeds, F, H, W, 3)
    nfe: int  # network evaluations per video
    seconds: float  # sampling + decoding, model loading excluded
    fps: int
    # A causal student's streaming figures (generate.StreamClock: seconds from the start of sampling until
    # the first chunk's and every chunk's latents were ready, decoding excluded); None for other models.
    stream: dict[str, float] | None = None


_models: dict[str, tuple[tuple, object]] = {}  # base -> (weights version, BaseModel)
_loras: dict[tuple[str, str], tuple] = {}  # (base, student folder) -> LoRA file version when loaded
_lock = threading.RLock()  # one sampling at a time: models are shared and a CPU is small


def file_version(path: str | Path | None) -> tuple:
    """(size, mtime) of a file, () when there is none: changes when the file is rewritten."""
    if path is None:
        return ()
    try:
        st = Path(path).stat()
    except OSError:
        return ()
    return (st.st_size, int(st.st_mtime))


def base_version(base: str) -> tuple:
    """Sizes and times of a local base's transformer weights (() for a hub id or an unknown name)."""
    try:
        _, folder = resolve_model(base)
    except ModelError:
        return ()
    return tuple(file_version(p) for p in sorted((folder / "transformer").glob("*.safetensors"))) if folder else ()


def weights_version(base: str, lora_dir: str | Path | None = None) -> tuple:
    """What the weights behind a base (and a student's LoRA folder) are now, for cache keys: a retrained
    teacher or student never shows an old result."""
    return (base_version(base), *(student_version(lora_dir) if lora_dir is not None else ((),)))


def student_version(lora_dir: str | Path) -> tuple:
    """The versions of a student's LoRA files: a two-expert student's low-noise file can be rewritten on its
    own, so it counts too (a student without one: ())."""
    return (file_version(Path(lora_dir) / LORA_FILE), file_version(Path(lora_dir) / LOW_NOISE_LORA_FILE))


def loaded_model(base: str):
    """The loaded base model, cached per name and reloaded when its weights change on disk. Raises
    ModelError."""
    from ..models.base import load_base_model  # torch: on the first sampling, so the page's questions stay cheap

    with _lock:
        version = base_version(base)
        cached = _models.get(base)
        if cached is None or cached[0] != version:
            _models[base] = (version, load_base_model(base))
        return _models[base][1]


def _forget_rewritten_student(base: str, lora_dir: Path) -> None:
    """Drop the cached base when the student's LoRA file changed since it was loaded into it."""
    key, version = (base, str(lora_dir)), student_version(lora_dir)
    if _loras.setdefault(key, version) != version:
        _models.pop(base, None)
        _loras[key] = version


def render(
    base: str,
    prompt: str,
    seeds: list[int],
    steps: int = 50,
    guidance: float = 5.0,
    lora_dir: str | Path | None = None,
    image: str | Path | None = None,
    num_frames: int | None = None,
) -> Rendered:
    """Sample one clip per seed: the teacher of `base` with `steps` Euler steps and CFG `guidance`, or,
    given a student's `lora_dir`, the student on its own few-step time list; for an image-to-video base
    every clip starts from the first frame `image`; `num_frames` frames (4k+1), else the model's own length.
    Raises ValueError (a bad setting, a frame and a base that do not go together) or ModelError."""
    from .generate import StreamClock, sample_frames  # torch: on the first sampling, as above

    cfg = SampleConfig(
        base=base,
        prompt=prompt,
        seeds=list(seeds),
        steps=int(steps),
        guidance=float(guidance),
        lora=str(lora_dir) if lora_dir is not None else None,
        image=str(image) if image is not None else None,
        num_frames=int(num_frames) if num_frames else None,
    )
    cfg.validate()
    with _lock:
        if lora_dir is not None:
            _forget_rewritten_student(base, Path(lora_dir))
        model = loaded_model(base)
        started, clock = time.perf_counter(), StreamClock()
        clips, nfe = sample_frames(model, cfg, on_chunk=clock)
        seconds = time.perf_counter() - started
    return Rendered(clips=clips, nfe=nfe, seconds=seconds, fps=model.fps, stream=clock.figures())


def world_of(base: str) -> str | None:
    """'shapes' for a base of the built-in world (its exact metrics apply), else None. Read from the
    base's folder without loading it, so a page can ask about a large base. Raises ModelError."""
    return base_world(base)


def samples_in_jobs(base: str) -> bool:
    """Whether a page should sample `base` through `sample` jobs (the worker: one GPU holder at a time)
    rather than in the web process: for every base outside the tiny built-in world, and for every base
    on a machine with a GPU, which a training job may hold. A bad name is False: sampling reports it."""
    try:
        world = world_of(base)
    except ModelError:
        return False
    return world != "shapes" or accelerator_present()
