"""The teacher's sampler for a base that ships its own multistep solver (Cosmos-Predict2.5's UniPC): the
pipeline's loop, with every forward through velocity() and CFG in the engine's convention.

A flow-prediction scheduler (`prediction_type="flow_prediction"`) takes the velocity v = eps - x0 as its
model output, the engine's own, so the only difference from `sampling.teacher_sample` is the update
rule: the scheduler's step (UniPC's predictor-corrector of order 2) in place of Euler."""

from __future__ import annotations

import torch

from .sampling import Progress, cfg_velocity


@torch.no_grad()
def scheduler_sample(
    transformer,
    noise: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    scheduler,
    steps: int,
    guidance: float,
    progress: Progress = None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """`steps` steps of `scheduler` from unit noise, as Cosmos2_5_PredictBasePipeline starts (its first
    sigma, 200/201, is taken as reached by the noise itself)."""
    if getattr(scheduler.config, "prediction_type", None) != "flow_prediction":
        raise ValueError(
            f"{type(scheduler).__name__} predicts {scheduler.config.prediction_type!r}, not a flow velocity: "
            "sample this base with the Euler teacher sampler"
        )
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    for i, timestep in enumerate(scheduler.timesteps):
        v = cfg_velocity(transformer, x, float(scheduler.sigmas[i]), cond, uncond, guidance, condition)
        x = scheduler.step(v.float(), timestep, x.float(), return_dict=False)[0].to(noise.dtype)
        if progress:
            progress(i + 1, steps)
    return x
