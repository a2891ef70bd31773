"""The distribution-matching math of DMD2 and DFD, as small pure functions (docs/method.md has
the derivation). Networks come in as callables, so every line here can be checked by hand in a test.

Conventions: flow matching, x_t = (1 - t) x0 + t eps; "x0" is a clean-sample prediction; tensors
are (B, C, F, H, W) latents; t is a per-sample tensor of shape (B,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

X0Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> x0 prediction


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The forward process x_t = (1 - t) x0 + t eps."""
    t = _per_sample(t, x0)
    return (1.0 - t) * x0 + t * eps


def x0_from_velocity(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """x0 = x_t - t v for a velocity prediction v = eps - x0."""
    return x_t - _per_sample(t, x_t) * v


def cfg_x0(x0_cond: torch.Tensor, x0_uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance in x0 space, FastGen's convention: uncond + s * (cond - uncond)."""
    return x0_uncond + guidance * (x0_cond - x0_uncond)


def dmd_normalizer(student_sample: torch.Tensor, teacher_x0: torch.Tensor) -> torch.Tensor:
    """Per-sample weight 1 / (mean |x - x0_teacher| + 1e-6), in fp32 (DMD Eq. 8).

    The generated sample x is always the reference, also when DFD scores a real clip."""
    diff = (student_sample.float() - teacher_x0.float()).abs()
    return 1.0 / (diff.flatten(1).mean(dim=1) + 1e-6)


def dmd_loss(student_sample: torch.Tensor, fake_x0: torch.Tensor, teacher_x0: torch.Tensor) -> torch.Tensor:
    """0.5 * mse(x, stopgrad(x - grad)), grad = (x0_fake - x0_teacher) * w, computed in float64.

    Its gradient with respect to x is exactly grad / numel: the student moves towards the teacher's
    x0 and away from the fake score's."""
    w = dmd_normalizer(student_sample, teacher_x0).double()
    grad = (fake_x0.double() - teacher_x0.double()) * _per_sample(w, fake_x0.double())
    x = student_sample.double()
    target = (x - grad).detach()
    return 0.5 * F.mse_loss(x, target)


@dataclass
class GeneratorTerms:
    """The generator loss and what it saw, for logging and the validity diagnostic."""

    loss: torch.Tensor
    data_forcing: torch.Tensor  # per-sample bool: did the teacher score the real clip?
    real_gap: torch.Tensor  # per-sample mean ||x_real - G||^2 (paper Eq. 7), always measured


def generator_loss(
    student_sample: torch.Tensor,
    real_batch: torch.Tensor,
    eps: torch.Tensor,
    t: torch.Tensor,
    fake_x0: X0Fn,
    teacher_x0: X0Fn,
    data_forcing: torch.Tensor | bool,
) -> GeneratorTerms:
    """The student's DMD2 or DFD loss for one batch.

    The fake score always sees the noised student sample. The teacher sees the same noise eps at the
    same t, applied to the student sample (DMD) or, when `data_forcing`, to the real clip that shares
    the student's condition (DFD). `data_forcing` is one bool for the batch (the paper's per-step coin)
    or a per-sample bool tensor (noise-stage routing forces only samples above t_min).
    """
    x = student_sample.detach()
    forcing = torch.as_tensor(data_forcing, device=x.device).expand(x.shape[0])
    teacher_in = x  # DMD2: the teacher scores the student's own sample
    teacher_in = torch.where(_per_sample(forcing, x).bool(), real_batch.to(x.dtype), teacher_in)  # DFD, paper Eq. 9-10
    with torch.no_grad():
        x0_fake = fake_x0(add_noise(x, eps, t), t)
        x0_teacher = teacher_x0(add_noise(teacher_in, eps, t), t)
    loss = dmd_loss(student_sample, x0_fake, x0_teacher)
    real_gap = (real_batch.float() - x.float()).pow(2).flatten(1).mean(dim=1)
    return GeneratorTerms(loss=loss, data_forcing=forcing, real_gap=real_gap)


def fake_score_loss(fake_velocity: torch.Tensor, student_sample: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Flow-matching denoising loss of the fake score on detached student samples: v target = eps - x."""
    return F.mse_loss(fake_velocity.float(), (eps - student_sample.detach()).float())


def shifted_time(u: torch.Tensor, shift: float, t_min: float = 0.001, t_max: float = 0.999) -> torch.Tensor:
    """DMD noise time from uniform u in [0, 1): t = s u / (1 + (s - 1) u), clipped to [t_min, t_max]."""
    t = shift * u / (1.0 + (shift - 1.0) * u)
    return t.clamp(t_min, t_max)
