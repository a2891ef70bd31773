"""The flow-matching arithmetic, once, for the samplers, the DMD2/DFD losses, the trainer and the
teacher's pretraining: x_t = (1 - t) x0 + t eps, the network predicts the velocity v = eps - x0, so
x0 = x_t - t v. t is a number or a per-sample tensor of shape (B,) against (B, C, F, H, W) latents; it
is cast to the latents' dtype and device before any arithmetic, so every caller gets the same bits.

Classifier-free guidance is combined in velocity space, uncond + s * (cond - uncond). Because x0 is
affine in v at fixed (x_t, t), guiding the velocities and then taking x0 equals guiding the two x0
predictions (tests/test_losses.py checks it), so the teacher's target in training and its sampler
agree."""

from __future__ import annotations

import torch


def per_sample(t, like: torch.Tensor) -> torch.Tensor:
    """t (a number, a 0-d tensor or one value per sample) in `like`'s dtype and device, shaped to broadcast
    over its sample dimensions."""
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    return t.view(-1, *([1] * (like.ndim - 1))) if t.ndim >= 1 else t


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    """The forward process x_t = (1 - t) x0 + t eps."""
    t = per_sample(t, x0)
    return (1.0 - t) * x0 + t * eps


def x0_from_velocity(x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
    """x0 = x_t - t v for a velocity prediction v = eps - x0."""
    return x_t - per_sample(t, x_t) * v


def guided(cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance of two velocity predictions: uncond + s * (cond - uncond)."""
    return uncond + guidance * (cond - uncond)


def shifted_time(u: torch.Tensor, shift: float, t_min: float = 0.001, t_max: float = 0.999) -> torch.Tensor:
    """Noise time from uniform u in [0, 1): t = s u / (1 + (s - 1) u), clipped to [t_min, t_max] (DMD's
    time, and with [0, 1] the teacher's pretraining time)."""
    t = shift * u / (1.0 + (shift - 1.0) * u)
    return t.clamp(t_min, t_max)
