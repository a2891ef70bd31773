"""The distribution-matching math of DMD2 and DFD, as small pure functions (docs/method.md has
the derivation). Networks come in as callables, so every line here can be checked by hand in a test.

Conventions: flow matching, x_t = (1 - t) x0 + t eps; "x0" is a clean-sample prediction; tensors
are (B, C, F, H, W) latents; t is a per-sample tensor of shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.flow import add_noise, shifted_time, x0_from_velocity  # noqa: F401  (the trainer reads them as losses.*)
from ..core.flow import per_sample as _per_sample

X0Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> x0 prediction


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
    data_forcing: torch.Tensor  # per-sample weight of the teacher-on-real term (0: DMD2, 1: DFD's coin came up)
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
    same t, applied to the student sample (DMD) or, where `data_forcing` is above 0, to the real clip that
    shares the student's condition (DFD). `data_forcing` is the per-sample weight of the teacher-on-real
    term drawn from the run's data_forcing_prob (DataForcing): one bool for the batch (the paper's per-step
    coin), per-sample 0/1 weights (noise-stage routing, per-sample coins), or weights in (0, 1) (the blend
    variant: the teacher scores both clips and its target is (1 - w) x0_teacher(sample) + w x0_teacher(real);
    docs/method.md, "Variants").
    """
    x = student_sample.detach()
    data_forcing = torch.as_tensor(data_forcing, device=x.device).expand(x.shape[0]).to(torch.float32)
    forced = data_forcing > 0
    teacher_in = x  # DMD2: the teacher scores the student's own sample
    teacher_in = torch.where(_per_sample(forced, x).bool(), real_batch.to(x.dtype), teacher_in)  # DFD, paper Eq. 9-10
    with torch.no_grad():
        x0_fake = fake_x0(add_noise(x, eps, t), t)
        x0_teacher = teacher_x0(add_noise(teacher_in, eps, t), t)
        blended = forced & (data_forcing < 1)
        if blended.any():  # the blend variant: a weight, not a coin, on the teacher-on-real term
            w = _per_sample(data_forcing, x0_teacher)
            mixed = (1 - w) * teacher_x0(add_noise(x, eps, t), t) + w * x0_teacher
            x0_teacher = torch.where(_per_sample(blended, x0_teacher).bool(), mixed, x0_teacher)
    loss = dmd_loss(student_sample, x0_fake, x0_teacher)
    real_gap = (real_batch.float() - x.float()).pow(2).flatten(1).mean(dim=1)
    return GeneratorTerms(loss=loss, data_forcing=data_forcing, real_gap=real_gap)


FORCING_SCHEDULES = ("constant", "decay", "rise")


def scheduled_prob(data_forcing_prob: float, schedule: str, progress: float) -> float:
    """DFD's data_forcing_prob p at `progress` in [0, 1] of the run: constant (the paper), decay p (1 - progress)
    from p to 0, or rise p * progress from 0 to p."""
    progress = min(max(float(progress), 0.0), 1.0)
    if schedule == "constant":
        return data_forcing_prob
    if schedule == "decay":
        return data_forcing_prob * (1.0 - progress)
    if schedule == "rise":
        return data_forcing_prob * progress
    raise ValueError(f"unknown data-forcing schedule {schedule!r}; choose from {', '.join(FORCING_SCHEDULES)}")


def forcing_weight(
    uniforms: torch.Tensor, data_forcing_prob: float, t: torch.Tensor, t_min: float, blend: bool
) -> torch.Tensor:
    """The per-sample data_forcing weights of the teacher-on-real term: the coin 1[u < data_forcing_prob] (the
    paper: one u for the whole step; per sample: one u each) or, blending, data_forcing_prob itself; 0 at DMD
    times below t_min (noise-stage routing)."""
    p = data_forcing_prob
    coin = torch.full_like(t, p, dtype=torch.float32) if blend else (uniforms.to(t.device) < p).to(torch.float32)
    return coin * (t >= t_min).to(torch.float32)


@dataclass
class DataForcing:
    """One student update's data-forcing draw: the config's data_forcing_prob after its schedule and, for the
    paper's per-step coin, the coin's uniform. Built by `of` from a DistillConfig-like object, the run's step
    and its coin generator (a numpy Generator shared by every rank, so all ranks agree)."""

    data_forcing_prob: float
    t_min: float = 0.0
    blend: bool = False
    per_sample: bool = False
    step_uniform: float | None = None

    @classmethod
    def of(cls, cfg, step: int, rng) -> DataForcing:
        if cfg.method != "dfd":
            return cls(data_forcing_prob=0.0, step_uniform=1.0)
        prob = scheduled_prob(cfg.data_forcing_prob, cfg.data_forcing_schedule, step / cfg.steps)
        per_sample = cfg.data_forcing_granularity == "sample"
        coin = None if cfg.data_forcing_blend or per_sample else float(rng.random())  # the paper's one coin per step
        return cls(
            data_forcing_prob=prob,
            t_min=cfg.dfd_t_min,
            blend=cfg.data_forcing_blend,
            per_sample=per_sample,
            step_uniform=coin,
        )

    def uniforms(self, rng, n: int) -> torch.Tensor:
        """The coins' uniforms for a global batch of n samples (drawn only for per-sample coins)."""
        if self.per_sample and not self.blend:
            return torch.from_numpy(rng.random(n))
        return torch.full((n,), 1.0 if self.step_uniform is None else self.step_uniform, dtype=torch.float64)

    def weight(self, t: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """The per-sample data_forcing weights generator_loss takes."""
        return forcing_weight(uniforms, self.data_forcing_prob, t, self.t_min, self.blend)


def fake_score_loss(fake_velocity: torch.Tensor, student_sample: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Flow-matching denoising loss of the fake score on detached student samples: v target = eps - x."""
    return F.mse_loss(fake_velocity.float(), (eps - student_sample.detach()).float())
