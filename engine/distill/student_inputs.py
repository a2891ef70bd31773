"""The student's side of one batch, as the Distiller's methods: this process's rows of the real batch, its
noise and DMD times (drawn for the whole global batch), the student's sample at one of its times (paired,
backward simulation, or the causal rollout), the teacher, fake score and student as x0 predictors, and the
spread of unrelated real clips that the validity gap is judged against."""

from __future__ import annotations

import torch

from ..core.flow import guided
from ..generation.sampling import velocity
from ..models.conditioning import condition_of_clips
from ..models.experts import teacher_guidance
from . import losses
from .adapters import STUDENT


class StudentInputs:
    """Mixed into Distiller, whose attributes (cfg, dist, data, model, adapters, transformer, gen, uncond,
    rollout) these methods read: one class keeps the run's state, this file keeps what one batch is made of."""

    def _x0(
        self,
        adapter: str | None,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        condition: torch.Tensor | None,
    ) -> torch.Tensor:
        if adapter is None:  # the teacher, with classifier-free guidance
            with self.adapters.teacher():
                v = velocity(
                    self.transformer,
                    torch.cat([x_t, x_t]),
                    t.repeat(2),
                    torch.cat([cond, self.uncond.expand_as(cond)]),
                    condition,
                )
            v_cond, v_uncond = v.chunk(2)
            # Two experts: each sample gets the CFG scale of the expert that scored it (Wan's recipe, per expert).
            guidance = teacher_guidance(self.transformer, t, self.cfg.guidance)
            return losses.x0_from_velocity(x_t, t, guided(v_cond, v_uncond, guidance))
        with self.adapters.using(adapter):
            return losses.x0_from_velocity(x_t, t, velocity(self.transformer, x_t, t, cond, condition))

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        """Noise for this process's rows, drawn for the whole global batch (one stream on every rank)."""
        shape = (like.shape[0] * self.dist.world, *like.shape[1:])
        return self.dist.shard(torch.randn(shape, generator=self.gen)).to(like.device, like.dtype)

    def _real_batch(self):
        """This process's rows of the global batch (batch_size clips per process); `condition`: for I2V,
        each clip's own first frame (DFD's real clip is the one the condition starts), else None."""
        real = self.dist.shard_batch(self.data.batch(self.cfg.batch_size * self.dist.world))
        real.condition = condition_of_clips(self.model, real.latents) if self.cfg.task == "i2v" else None
        return real

    def _student_sample(self, real, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's output for this batch and the student time it was produced at."""
        if self.rollout is not None:  # task ar: the causal student rolls the clip out chunk by chunk
            return self.rollout.sample(real, grad)
        t_list = self.cfg.t_list
        n = real.latents.shape[0]
        k_all = torch.randint(0, len(t_list) - 1, (n * self.dist.world,), generator=self.gen)
        k = self.dist.shard(k_all)
        t_student = torch.tensor([t_list[i] for i in k], device=real.latents.device)
        if self.cfg.student_input == "paired":
            x_in = losses.add_noise(real.latents, self.randn(real.latents), t_student)
        else:  # backward simulation: run the student's own steps from pure noise down to its time
            x_in = self.randn(real.latents)
            with torch.no_grad(), self.adapters.using(STUDENT):
                for j in range(int(k_all.max())):  # every rank draws the same noise
                    t_j = torch.full((n,), t_list[j], device=x_in.device)
                    v = velocity(self.transformer, x_in, t_j, real.cond, real.condition)
                    x0 = losses.x0_from_velocity(x_in, t_j, v)
                    t_next = torch.full((n,), t_list[j + 1], device=x_in.device)
                    renoised = losses.add_noise(x0, self.randn(x0), t_next)
                    x_in = torch.where((k > j).view(-1, 1, 1, 1, 1), renoised, x_in)
        self.adapters.use(STUDENT)
        network = self.dist.trained(STUDENT) if grad else self.transformer
        with torch.set_grad_enabled(grad):
            x0 = losses.x0_from_velocity(x_in, t_student, velocity(network, x_in, t_student, real.cond, real.condition))
        return x0, t_student

    def _dmd_time(self, n: int, device) -> torch.Tensor:
        t = losses.shifted_time(torch.rand(n * self.dist.world, generator=self.gen), self.cfg.time_shift)
        return self.dist.shard(t).to(device)

    def autocast(self):
        """bf16 autocast around the forwards when the base is bf16 (the backward runs outside it)."""
        return self.dist.autocast()

    def _unrelated_clip_gap(self) -> float:
        """Mean per-element ||x_a - x_b||^2 between real clips of (mostly) different captions: the scale
        against which the validity gap ||x_real - G||^2 is judged. The data sampler's state is put back
        afterwards, so the run's own sequence of batches is unchanged."""
        state = self.data.state()
        x = self.data.batch(16).latents.float().flatten(1)
        self.data.load_state(state)
        d = torch.cdist(x, x).pow(2) / x.shape[1]
        return float(d.sum() / (d.numel() - len(x)))
