"""Self-Forcing's training rollout of the causal student (task `ar`, docs/autoregressive.md).

The student generates the whole training clip chunk by chunk exactly as it will at inference: each chunk
attends to the cached keys and values of the chunks it generated itself before (committed clean, at t = 0),
never to real frames: the train-test gap of teacher forcing that Self-Forcing closes. What it returns is
the clip of every chunk's x0 prediction, on which the trainer takes the unchanged DMD2/DFD loss
(`generator_loss`) against the bidirectional teacher and fake score; in DFD the teacher may score the real
clip noised with the same eps at the same t, the one line, as for text-to-video.

Gradient truncation, as Self-Forcing does it (`same_step_across_blocks`, its default): one denoising step
index k is drawn per update, shared by every chunk; each chunk's steps before k run without gradient and
step k with it, so the gradient reaches the student only through one forward per chunk. The commits that
turn a chunk into context run without gradient, so no gradient flows from one chunk into the next (as in
Self-Forcing, whose cache is filled under no_grad). Gradient checkpointing works with the cache
(engine/models/causal.py says how the recomputed blocks see the cache they saw).

Student inputs (`student_input`): `backward` is Self-Forcing's: every chunk starts from pure noise and runs
the student's own steps 0..k-1 down to time t_k. `paired` is FastGen's pairing applied per chunk: the chunk
starts at t_k as the real clip's chunk noised with fresh noise (context still the student's own chunks), so
the rolled-out clip stays close to the real clip DFD's teacher may score (the validity condition).

Several processes (DDP): every chunk's forward with gradient goes through the student's DDP view, so the
view runs once per chunk before the update's single backward. That is what DDP reduces correctly without
find_unused_parameters: a LoRA weight used by several chunks gets one summed gradient from autograd (its
accumulator runs once per backward), so DDP's hook marks it ready once and all-reduces the sum.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..generation.causal_sampling import causal_sample, default_window
from ..generation.sampling import add_noise, velocity, x0_from_velocity
from ..models.causal import CausalAttention, chunk_bounds
from .adapters import STUDENT
from .previews import write_previews


class Rollout:
    """The causal student of one run: block-causal attention installed on the trainer's backbone (active
    only in the student's own forwards), the clip's chunks, and the rollout."""

    def __init__(self, distiller):
        model, cfg = distiller.model, distiller.cfg
        self.d = distiller
        self.frames = model.latent_shape(1, model.num_frames, model.height, model.width)[2]
        self.bounds = chunk_bounds(self.frames, cfg.chunk_frames)
        if len(self.bounds) < 2:
            raise ValueError(
                f"a clip of {self.frames} latent frame is a single chunk, nothing to generate after it: "
                "train the causal student on more frames"
            )
        self.causal = CausalAttention(distiller.transformer, cfg.chunk_frames).install()

    def lora_info(self) -> dict:
        """What a sampler needs to run the student (written to its lora_config.json)."""
        chunk = self.d.cfg.chunk_frames
        return {
            "causal": True,
            "chunk_frames": chunk,
            "trained_latent_frames": self.frames,
            "window_frames": default_window(self.frames, chunk),
        }

    def sample(self, real, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The rolled-out clip of x0 predictions (with gradient through step k of every chunk when `grad`)
        and the student time t_k it was produced at, per sample (the trainer's `_student_sample` contract)."""
        d, t_list = self.d, self.d.cfg.t_list
        exit_step = int(torch.randint(0, len(t_list) - 1, (1,), generator=d.gen))
        t_exit = t_list[exit_step]
        paired = d.cfg.student_input == "paired"
        d.adapters.use(STUDENT)
        network = d.dist.trained(STUDENT) if grad else d.transformer
        cache = self.causal.new_cache()
        chunks = []
        for index, (first, stop) in enumerate(self.bounds):
            real_chunk = real.latents[:, :, first:stop]
            part = real.condition[:, :, first:stop] if real.condition is not None else None
            if paired:
                x, start = add_noise(real_chunk, d.randn(real_chunk), t_exit), exit_step
            else:
                x, start = d.randn(real_chunk), 0
            with torch.no_grad(), self.causal.attend(cache):
                for j in range(start, exit_step):
                    x0 = x0_from_velocity(x, t_list[j], velocity(d.transformer, x, t_list[j], real.cond, part))
                    x = add_noise(x0, d.randn(x0), t_list[j + 1])
            with torch.set_grad_enabled(grad), self.causal.attend(cache):
                x0 = x0_from_velocity(x, t_exit, velocity(network, x, t_exit, real.cond, part))
            if index < len(self.bounds) - 1:
                with torch.no_grad(), self.causal.attend(cache, commit=True):
                    velocity(d.transformer, x0.detach(), 0.0, real.cond, part)
            chunks.append(x0)
        return torch.cat(chunks, dim=2), torch.full((x0.shape[0],), t_exit, device=x0.device)

    def sample_previews(self, shape: tuple[int, ...], cond: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """The causal student's preview latents as `sample` makes them from its lora_config.json: chunk by
        chunk with the cache, in its default window (engine/distill/previews.py writes them)."""
        info = self.lora_info()
        return causal_sample(
            self.d.transformer,
            shape,
            cond,
            tuple(self.d.cfg.t_list),
            seeds,
            info["chunk_frames"],
            window_frames=info["window_frames"],
            dtype=torch.float32,
        )

    def write_previews(self, seeds: tuple[int, ...]) -> list[Path]:
        """The run's previews drawn by `sample_previews`, named, written and reported as every student's."""
        return write_previews(self.d, seeds, self.sample_previews, note=", causal")
