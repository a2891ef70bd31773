"""Samplers in the flow-matching convention of Wan: x_t = (1 - t) x0 + t eps, the network predicts the
velocity v = eps - x0 at timestep 1000 t.

- `teacher_sample`: the multi-step teacher, Euler steps on the scheduler's shifted sigmas, with CFG.
- `student_sample`: the few-step student of DMD2/DFD: at each time of t_list it predicts x0 and
  re-noises it to the next time with fresh noise (the FastGen / DMD2 sampler, not the ODE).

An image-to-video model gets its condition with every forward: `condition`, None for text-to-video,
the channels of Wan2.1's concatenation (engine/models/conditioning.py) or a FrameCondition of
Wan2.2-TI2V's and Cosmos-Predict2.5's frame replacement (engine/models/frame_replacement.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..core.flow import add_noise, guided, x0_from_velocity
from ..core.timesteps import PAPER_T_LIST, check_t_list
from ..models.conditioning import with_condition
from ..models.frame_replacement import FrameCondition, frame_velocity

Progress = Callable[[int, int], None] | None


def velocity(
    transformer,
    x: torch.Tensor,
    t: torch.Tensor | float,
    prompt_embeds: torch.Tensor,
    condition: torch.Tensor | FrameCondition | None = None,
) -> torch.Tensor:
    """The network's velocity at time t (scalar or per-sample, in [0, 1]); `condition`: an I2V model's
    mask and first-frame channels, concatenated to x, or a FrameCondition (the given frame replacing the
    first latent frame: Wan2.2-TI2V, Cosmos-Predict2.5; engine/models/frame_replacement.py)."""
    t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if isinstance(condition, FrameCondition):
        return frame_velocity(transformer, x, t, prompt_embeds, condition)
    # A bf16 base takes bf16 inputs (not every op is under autocast on CPU); the caller gets its own dtype back.
    embed = getattr(transformer, "patch_embedding", None)
    dtype = embed.weight.dtype if embed is not None else x.dtype
    v = transformer(
        hidden_states=with_condition(x, condition).to(dtype),
        timestep=t * 1000.0,
        encoder_hidden_states=prompt_embeds.to(dtype),
        return_dict=False,
    )[0]
    return v.to(x.dtype)


def cfg_velocity(
    transformer, x, t, cond: torch.Tensor, uncond: torch.Tensor, guidance: float, condition: torch.Tensor | None = None
) -> torch.Tensor:
    """uncond + s * (cond - uncond), with both branches in one batched forward (the same frame in both)."""
    if guidance == 1.0:
        return velocity(transformer, x, t, cond, condition)
    both = velocity(transformer, torch.cat([x, x]), _repeat_time(t, 2), torch.cat([cond, uncond]), condition)
    v_cond, v_uncond = both.chunk(2)
    return guided(v_cond, v_uncond, guidance)


def _repeat_time(t, n: int):
    t = torch.as_tensor(t, dtype=torch.float32)
    return t if t.ndim == 0 else t.repeat(n)


def teacher_sigmas(scheduler, steps: int) -> list[float]:
    """The scheduler's (shifted) sigmas for `steps` steps, ending at 0."""
    scheduler.set_timesteps(steps)
    sigmas = [float(s) for s in scheduler.sigmas]
    return sigmas if sigmas[-1] == 0.0 else sigmas + [0.0]


@torch.no_grad()
def teacher_sample(
    transformer,
    noise: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    sigmas: list[float],
    guidance: float | Callable[[float], float],
    progress: Progress = None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Euler integration of the probability-flow ODE from sigmas[0] to 0, with CFG (`guidance`: a scale, or
    the scale at each sigma, as two experts take their own)."""
    x = noise * sigmas[0]
    steps = len(sigmas) - 1
    for i in range(steps):
        scale = guidance(sigmas[i]) if callable(guidance) else guidance
        v = cfg_velocity(transformer, x, sigmas[i], cond, uncond, scale, condition)
        x = x + (sigmas[i + 1] - sigmas[i]) * v
        if progress:
            progress(i + 1, steps)
    return x


@torch.no_grad()
def student_sample(
    transformer,
    noise: torch.Tensor,
    cond: torch.Tensor,
    t_list: tuple[float, ...] = PAPER_T_LIST,
    generator: torch.Generator | list[torch.Generator] | None = None,
    progress: Progress = None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Few-step sampling: predict x0 at each time of t_list, re-noise to the next with fresh noise."""
    check_t_list(t_list)
    x = noise
    steps = len(t_list) - 1
    for i in range(steps):
        t, t_next = t_list[i], t_list[i + 1]
        x0 = x0_from_velocity(x, t, velocity(transformer, x, t, cond, condition))
        if t_next > 0:
            eps = _randn_like(x, generator)
            x = add_noise(x0, eps, t_next)
        else:
            x = x0
        if progress:
            progress(i + 1, steps)
    return x


def _randn_like(x: torch.Tensor, generator) -> torch.Tensor:
    if isinstance(generator, (list, tuple)):
        per = [torch.randn(x.shape[1:], generator=g) for g in generator]
        return torch.stack(per).to(device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)


def seed_generators(seeds: list[int], stream: int = 1) -> list[torch.Generator]:
    """Per-sample CPU generators for the re-noising draws of `student_sample` (a stream apart from
    the initial noise, so that it does not repeat it)."""
    return [torch.Generator().manual_seed(int(s) * 7919 + stream) for s in seeds]


def seeded_noise(shape: tuple[int, ...], seeds: list[int], device, dtype) -> torch.Tensor:
    """One noise tensor per seed, independent of batch composition (seed s gives the same video alone
    or in a batch), so teacher, DMD2 and DFD samples of one seed start from the same noise."""
    per = [torch.randn(shape[1:], generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(per).to(device=device, dtype=dtype)
