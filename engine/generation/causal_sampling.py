"""The causal student's sampler: the video is generated chunk after chunk (engine/models/causal.py has the
chunks, the attention and the cache). Each chunk runs the student's few-step sampler on its t_list (predict
x0, re-noise it to the next time with fresh noise, as `student_sample` does), attending to the cached keys
and values of the chunks before it; its clean result is then run once more at t = 0 and that forward's keys
and values are committed to the cache (Self-Forcing's cache update with context noise 0), so later chunks
see clean context, exactly as in training.

Longer than training: with `window_frames` the cache keeps only the newest frames (a rolling cache), so the
video can go on past the length the student was trained on. Keys are cached after RoPE at their absolute
frame and each new chunk is rotated at its own absolute frame; since RoPE's query-key product depends only
on the difference of the two positions, every attention sees the same relative positions it saw in
training (at most the window plus the chunk apart), wherever in the video it is. What changes past the
window is which frames are in the context: the first frame and the oldest chunks leave it. Absolute frames
are limited by the model's RoPE table (rope_max_seq_len latent frames; 1024 for Wan2.1).

Noise is drawn chunk by chunk from per-seed generators, so the first chunks of a seed are the same whatever
the video's total length (a stream's beginning does not depend on where it will end).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ..core.flow import add_noise, x0_from_velocity
from ..core.timesteps import check_t_list
from ..models.causal import chunk_bounds, installed
from .sampling import Progress, seed_generators, velocity


def causal_layout(lora_dir: str | Path | None) -> dict | None:
    """chunk_frames and window_frames of a causal student (its lora_config.json), None for another student."""
    meta = Path(lora_dir) / "lora_config.json" if lora_dir else None
    if meta is None or not meta.is_file():
        return None
    info = json.loads(meta.read_text())
    if not info.get("causal"):
        return None
    return {"chunk_frames": int(info["chunk_frames"]), "window_frames": info.get("window_frames")}


def default_window(trained_frames: int, chunk_frames: int) -> int:
    """The longest context that keeps every query-key distance within what a student trained on
    `trained_frames` latent frames saw: trained_frames - chunk_frames frames (at least 1)."""
    return max(1, trained_frames - chunk_frames)


def _draw(generators: list[torch.Generator], shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    return torch.stack([torch.randn(shape[1:], generator=g) for g in generators]).to(device=device, dtype=dtype)


@torch.no_grad()
def causal_sample(
    transformer,
    shape: tuple[int, ...],
    cond: torch.Tensor,
    t_list: tuple[float, ...],
    seeds: list[int],
    chunk_frames: int,
    window_frames: int | None = None,
    progress: Progress = None,
    condition: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    on_chunk: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Latents (B, C, F, H, W) of shape `shape`, generated chunk by chunk with a KV cache of at most
    window_frames frames (None: everything, no eviction). One seed per row.

    on_chunk(index, chunks, latents): called as each chunk's clean latents are ready, before it is committed
    to the cache, so a caller can stream them (or time them: the first call is the time to the first chunk)."""
    check_t_list(t_list)
    if len(seeds) != shape[0]:
        raise ValueError(f"{len(seeds)} seeds for a batch of {shape[0]}")
    device = cond.device
    start_noise = [torch.Generator().manual_seed(int(s)) for s in seeds]
    renoise = seed_generators(seeds)
    bounds = chunk_bounds(shape[2], chunk_frames)
    steps, done = len(t_list) - 1, 0
    out = []
    with installed(transformer, chunk_frames) as causal:
        cache = causal.new_cache(window_frames)
        for index, (first, stop) in enumerate(bounds):
            chunk_shape = (shape[0], shape[1], stop - first, shape[3], shape[4])
            part = condition[:, :, first:stop] if condition is not None else None
            x = _draw(start_noise, chunk_shape, device, dtype)
            for i in range(steps):
                with causal.attend(cache):
                    x0 = x0_from_velocity(x, t_list[i], velocity(transformer, x, t_list[i], cond, part))
                x = (
                    add_noise(x0, _draw(renoise, chunk_shape, device, dtype), t_list[i + 1])
                    if t_list[i + 1] > 0
                    else x0
                )
                done += 1
                if progress:
                    progress(done, steps * len(bounds))
            if on_chunk is not None:
                on_chunk(index, len(bounds), x)
            if index < len(bounds) - 1:  # the clean chunk becomes context (the last one is never attended to)
                with causal.attend(cache, commit=True):
                    velocity(transformer, x, 0.0, cond, part)
            out.append(x)
    return torch.cat(out, dim=2)
