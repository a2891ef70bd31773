"""The student's preview videos during a run: two training captions, the same seeds every time, written
as mp4 artifacts; for an image-to-video run all from one real clip's first frame. The sampler is the
caller's: the bidirectional student's few-step sampler by default, a causal student's chunk-by-chunk one
(engine/distill/rollout.py) for task ar; naming, writing and reporting are the same for both. Beside them,
samples/previews.json records those captions and seeds (a video's name holds only their indices), so a
model card can caption each video with its prompt."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..generation.sampling import seed_generators, seeded_noise, student_sample
from ..media.video import write_mp4
from ..models.conditioning import condition_of_clips
from ..models.students import PREVIEWS_FILE
from .adapters import STUDENT

# (latent shape, caption embeddings, seeds) -> the student's latents; run under no_grad with the student active.
Sampler = Callable[[tuple[int, ...], torch.Tensor, list[int]], torch.Tensor]


def preview_condition(model, data, task: str) -> torch.Tensor | None:
    """The condition channels of one real clip's first frame for an I2V run (None for T2V). The data
    sampler's state is put back, so the run's own sequence of batches is unchanged."""
    if task != "i2v":
        return None
    state = data.state()
    clip = data.batch(1).latents
    data.load_state(state)
    return condition_of_clips(model, clip.to(model.device))


def student_sampler(distiller) -> Sampler:
    """The bidirectional student's few-step sampler on its t_list, from each seed's own noise, as `sample`
    runs it (for I2V from the run's preview first frame)."""

    def sample(shape, cond, seeds):
        noise = seeded_noise(shape, seeds, distiller.model.device, torch.float32)
        return student_sample(
            distiller.transformer,
            noise,
            cond,
            tuple(distiller.cfg.t_list),
            generator=seed_generators(seeds),
            condition=distiller.preview_condition,
        )

    return sample


def write_previews(distiller, seeds: tuple[int, ...], sample: Sampler | None = None, note: str = "") -> list[Path]:
    """Student samples of the run's preview captions on `seeds`, drawn by `sample` (default: the
    bidirectional student's sampler); rank 0 writes and reports them, `note` added to each label."""
    sample = sample or student_sampler(distiller)
    model, paths = distiller.model, []
    for i, prompt in enumerate(distiller.preview_prompts):
        cond = distiller.preview_cond[i : i + 1].expand(len(seeds), -1, -1)
        shape = model.latent_shape(len(seeds), model.num_frames, model.height, model.width)
        with torch.no_grad(), distiller.adapters.using(STUDENT), distiller.autocast():
            latents = sample(shape, cond, list(seeds))
        if distiller.dist.rank != 0:  # a sharded base samples on every process; rank 0 writes
            continue
        scale = max(1, 256 // max(model.height, model.width))
        for seed, video in zip(seeds, model.decode(latents)):
            path = write_mp4(
                distiller.out / "samples" / f"step{distiller.step}-prompt{i}-seed{seed}.mp4",
                video,
                fps=model.fps,
                scale=scale,
            )
            distiller.tracking.video(f"preview/prompt{i}-seed{seed}", video, path, model.fps, distiller.step)
            distiller.cb.on_artifact("video", path, f"step {distiller.step}: {prompt} (seed {seed}{note})")
            paths.append(path)
    if distiller.dist.rank == 0 and paths:
        write_record(paths[0].parent, distiller.preview_prompts, seeds, distiller.cfg.task)
    return paths


def write_record(folder: Path, prompts: list[str], seeds, task: str) -> Path:
    """samples/previews.json: prompt I of stepN-promptI-seedS.mp4 is prompts[I]. Written whole or not at
    all (temp file, then rename), so a reader never sees half a record."""
    record = {"prompts": list(prompts), "seeds": [int(s) for s in seeds], "task": task}
    path = Path(folder) / PREVIEWS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path
