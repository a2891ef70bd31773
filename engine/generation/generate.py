"""Text-to-video (or, with a first frame, image-to-video) generation with a base model, optionally with a
few-step student LoRA: the one function behind `python -m engine sample`, the sample job and the studio's
Compare tab."""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..config.sample import SampleConfig
from ..core.files import LORA_FILE
from ..media.frames import first_frame_psnr
from ..media.video import write_mp4
from ..models.base import BaseModel, load_base_model
from ..models.conditioning import for_seeds, read_first_frame
from ..models.experts import teacher_guidance
from ..models.lora import activate, check_loaded, read_lora_file, wrong_base
from ..models.students import student_t_list
from . import sampling
from .causal_sampling import causal_layout, causal_sample
from .cpu_memory import keep_freed_memory
from .scheduler_sampling import scheduler_sample


@dataclass
class GenerationResult:
    paths: list[Path]
    seconds: float  # sampling + decode + writing, model loading excluded
    nfe: int  # network forward evaluations per video
    first_frame_psnr: list[float] | None = None  # image-to-video: each video's first frame against the given one, dB
    stream: dict[str, float] | None = None  # a causal student's StreamClock.figures(); None for other models


class StreamClock:
    """When a causal student's chunks were ready, in seconds from the clock's creation (made just before
    sampling starts, so prompt encoding is included): latents only, decoding excluded, since the chunks
    are decoded together after the last one. Handed to sample_frames as its on_chunk."""

    def __init__(self):
        self._start = time.perf_counter()
        self.ready: list[float] = []

    def __call__(self, index: int, chunks: int, latents) -> None:
        self.ready.append(time.perf_counter() - self._start)

    def figures(self) -> dict[str, float] | None:
        """{'first_chunk_seconds', 'all_chunks_seconds'}, or None when no chunk was made (not a causal student)."""
        if not self.ready:
            return None
        return {"first_chunk_seconds": self.ready[0], "all_chunks_seconds": self.ready[-1]}


def sample_frames(
    model: BaseModel, cfg: SampleConfig, progress=None, on_chunk=None, first_frame: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """uint8 videos (len(seeds), F, H, W, 3) for a validated config, and the NFE per video.

    Without a LoRA this is the teacher (Euler, CFG). With a student LoRA it is the student's few-step
    sampler on its own t_list (no CFG: the guidance was distilled into the student). on_chunk: for a causal
    student, called as each chunk's latents are ready (causal_sample's; a StreamClock times them). first_frame:
    an I2V model's conditioning frame as uint8 (H, W, 3), in place of the file cfg.image names."""
    if model.device.type == "cpu":
        keep_freed_memory()  # ~15% faster sampling on a small CPU (cpu_memory.py)
    frames = cfg.num_frames or model.num_frames
    height, width = cfg.height or model.height, cfg.width or model.width
    shape = model.latent_shape(len(cfg.seeds), frames, height, width)
    cond = model.encode_prompts([cfg.prompt]).expand(len(cfg.seeds), -1, -1)  # one prompt: encode it once
    noise = sampling.seeded_noise(shape, cfg.seeds, model.device, model.dtype)
    condition = image_condition(model, cfg, frames, height, width, first_frame)
    if cfg.lora is not None or cfg.t_list:  # the few-step sampler (t_list alone: on the base, for timing)
        t_list = tuple(cfg.t_list or student_t_list(cfg.lora))
        causal = causal_layout(cfg.lora)  # a causal (ar) student: chunk after chunk with its KV cache
        with student_adapter(model, cfg.lora) if cfg.lora is not None else teacher_only(model):
            if causal is not None:
                latents = causal_sample(
                    model.transformer,
                    shape,
                    cond,
                    t_list,
                    cfg.seeds,
                    progress=progress,
                    condition=condition,
                    dtype=model.dtype,
                    on_chunk=on_chunk,
                    **causal,
                )
            else:
                latents = sampling.student_sample(
                    model.transformer,
                    noise,
                    cond,
                    t_list,
                    generator=sampling.seed_generators(cfg.seeds),
                    progress=progress,
                    condition=condition,
                )
        nfe = len(t_list) - 1 if causal is None else len(t_list)  # a causal student's: per chunk, with its commit
        return model.decode(latents), nfe
    uncond = model.encode_prompts([cfg.negative_prompt]).expand(len(cfg.seeds), -1, -1)
    with teacher_only(model):
        if model.meta.get("teacher_solver") == "scheduler":  # a base with its own multistep solver (Cosmos)
            latents = scheduler_sample(
                model.transformer,
                noise,
                cond,
                uncond,
                model.pipe.scheduler,
                cfg.steps,
                cfg.guidance,
                progress,
                condition,
            )
            nfe = cfg.steps * (1 if cfg.guidance == 1.0 else 2)
        else:
            sigmas = sampling.teacher_sigmas(model.pipe.scheduler, cfg.steps)
            # Two experts (Wan2.2-A14B): cfg.guidance is the high-noise expert's; the low-noise one takes the base's.
            guidance = partial(teacher_guidance, model.transformer, guidance=cfg.guidance)
            latents = sampling.teacher_sample(
                model.transformer, noise, cond, uncond, sigmas, guidance, progress, condition
            )
            nfe = sum(1 if guidance(s) == 1.0 else 2 for s in sigmas[:-1])
    return model.decode(latents), nfe


def image_condition(
    model: BaseModel, cfg: SampleConfig, frames: int, height: int, width: int, first: np.ndarray | None = None
):
    """An I2V model's condition channels for the frame `first` or else cfg.image (one per seed), None for a
    T2V model; a clear error when the image and the model's task do not go together."""
    if "i2v" not in model.tasks:
        if cfg.image is not None or first is not None:
            raise ValueError(f"{model.source} is a text-to-video model: an image needs an image-to-video base")
        return None
    if cfg.image is None and first is None:
        if "t2v" in model.tasks:  # a frame-replacement base makes a video from text alone too
            return None
        raise ValueError(f"{model.source} is an image-to-video model: give the first frame (--image FRAME.png)")
    if first is None:
        first = read_first_frame(cfg.image, height, width)
    elif first.shape != (height, width, 3):
        raise ValueError(f"the first frame is {first.shape[1]}x{first.shape[0]}, the video {width}x{height}")
    return for_seeds(model.condition_latents(first[None], frames), len(cfg.seeds))


def _adapter_name(lora_dir: str | Path) -> str:
    """One adapter per student file version: the resolved path and the weight file's mtime."""
    weights = Path(lora_dir).resolve() / LORA_FILE
    key = f"{weights}|{weights.stat().st_mtime_ns if weights.is_file() else 0}"
    return "lora_" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _load_student(transformer, lora_dir: str | Path, name: str, base_source: str) -> None:
    """Load a student LoRA as adapter `name`; a LoRA made for another base is refused in one sentence."""
    from diffusers.utils import logging as diffusers_logging  # diffusers' own modules: only with a student

    state = read_lora_file(lora_dir)
    keys = list(state)
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # its error log would be ours at 40 lines' length
    try:
        with warnings.catch_warnings():  # peft warns when a second adapter joins: one per student is the design
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            transformer.load_lora_adapter(state, adapter_name=name, prefix="transformer")
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise wrong_base(lora_dir, base_source) from None
    finally:
        diffusers_logging.set_verbosity(level)
    check_loaded(transformer, name, keys, lora_dir, base_source)


@contextmanager
def student_adapter(model: BaseModel, lora_dir: str | Path, fused: bool = True):
    """Run the base as the student of `lora_dir` (its LoRA is loaded once per model and kept for reuse).

    fused: merge the LoRA into the weights it adapts for the duration (W + s * B @ A, one matmul per
    layer), so each forward costs what the base's does; the original weight tensors themselves are put
    back afterwards, so the teacher shared by every student never drifts through merge/unmerge rounding."""
    transformer = model.transformer
    name = _adapter_name(lora_dir)
    loaded = set(getattr(transformer, "peft_config", {}) or {})
    if name not in loaded:
        _load_student(transformer, lora_dir, name, model.source)
    if not fused:
        activate(transformer, name)
        try:
            yield
        finally:
            activate(transformer, None)
        return
    # The merged weights of the last student are kept (one extra copy of the adapted layers), so sampling
    # the same student again costs no merge: the base weights they came from never change.
    cached = getattr(transformer, "_dfd_fused", None)
    if cached is None or cached[0] != name:
        merged = []
        with torch.no_grad():
            for module in transformer.modules():
                if name in getattr(module, "lora_A", {}):
                    base = module.get_base_layer()
                    delta = module.get_delta_weight(name).to(base.weight.dtype)
                    merged.append((base, torch.nn.Parameter(base.weight + delta, requires_grad=False)))
        cached = (name, merged)
        transformer._dfd_fused = cached
    originals = []
    activate(transformer, None)  # peft layers now run their base layer only: the merged weight
    try:
        for base, weight in cached[1]:
            originals.append((base, base.weight))
            base.weight = weight
        yield
    finally:
        for base, weight in originals:
            base.weight = weight


@contextmanager
def teacher_only(model: BaseModel):
    """Make sure no LoRA is active while the teacher samples."""
    if getattr(model.transformer, "peft_config", None):
        activate(model.transformer, None)
    yield


def generate(
    cfg: SampleConfig,
    out_dir: str | Path,
    model: BaseModel | None = None,
    progress: Callable[[int, int], None] | None = None,
    name_prefix: str = "seed",
) -> GenerationResult:
    """Sample one video per seed and write `<out_dir>/<prefix><seed>.mp4`. Raises ValueError/ModelError."""
    cfg.validate()
    model = model or load_base_model(cfg.base)
    started = time.perf_counter()
    clock = StreamClock()
    given = None
    if cfg.image is not None and "i2v" in model.tasks:  # read once: the condition and the PSNR below both use it
        given = read_first_frame(cfg.image, cfg.height or model.height, cfg.width or model.width)
    videos, nfe = sample_frames(model, cfg, progress, on_chunk=clock, first_frame=given)
    out_dir = Path(out_dir)
    paths = [
        write_mp4(out_dir / f"{name_prefix}{seed}.mp4", video, fps=model.fps, scale=cfg.scale)
        for seed, video in zip(cfg.seeds, videos)
    ]
    psnr = None
    if given is not None:  # how closely each video starts on the frame it was given
        psnr = [round(first_frame_psnr(video[None], given), 2) for video in videos]
    return GenerationResult(
        paths=paths, seconds=time.perf_counter() - started, nfe=nfe, first_frame_psnr=psnr, stream=clock.figures()
    )
