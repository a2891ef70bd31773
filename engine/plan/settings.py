"""A run's settings as the plan's spec, and the plan of a Distill form's settings for the studio: the
stages' peaks and parts, the fit on a named GPU and the step time and hours at a stated MFU. Torch-free
(the planning runs in a fresh process, or is read from engine.plan.cache)."""

from __future__ import annotations

from .cache import plan_dict
from .spec import ALIASES, BASES, WAN_DEFAULTS_SHAPE, PlanError, PlanSpec
from .timing import DEFAULT_MFU, GPUS, step_seconds, transfer_seconds

# The share of free memory a plan may fill: the allocator's fragmentation and CUDA's context take the rest.
MARGIN = 0.92
GiB = 2**30


def spec_of_config(cfg, world: int = 1, text_encoder: bool = False, vae: bool = False) -> PlanSpec:
    """The spec (checked) of a DistillConfig's run on `world` processes; PlanError where the plan cannot
    plan it (a base it does not know, a size the base does not take)."""
    base = ALIASES.get(cfg.base, cfg.base)
    if base not in BASES:
        raise PlanError(
            f"base {cfg.base!r}: the plan knows {', '.join(sorted(set(BASES) | set(ALIASES)))} (each at its real "
            "config)"
        )
    return PlanSpec(
        base=base,
        task=cfg.task,
        frames=cfg.num_frames or WAN_DEFAULTS_SHAPE[0],
        height=cfg.height or WAN_DEFAULTS_SHAPE[1],
        width=cfg.width or WAN_DEFAULTS_SHAPE[2],
        batch=cfg.batch_size,
        precision="fp32" if cfg.mixed_precision == "no" else "bf16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        rank=cfg.lora_rank,
        gpus=world,
        sharding="none" if world == 1 else ("fsdp2" if getattr(cfg, "shard_base", False) else "ddp"),
        guidance=cfg.guidance,
        student_update_freq=cfg.student_update_freq,
        text_encoder=text_encoder,
        vae=vae,
        vae_tiling=getattr(cfg, "vae_tiling", False),
        block_swap=getattr(cfg, "block_swap", 0),
        base_int8=getattr(cfg, "base_int8", False),
    ).check()


def plan_of_config(cfg, gpu: str, mfu: float = DEFAULT_MFU, steps: int | None = None) -> dict:
    """The plan of a DistillConfig's run on one `gpu` (a name of timing.GPUS) as the studio shows it: the
    plan's dict with `gpu`, `mfu`, `fits` (peak within MARGIN of the card's memory), `step_seconds` and
    `hours` for cfg.steps (or `steps`). Every stage is planned (text encoding and the VAE included)."""
    if gpu not in GPUS:
        raise PlanError(f"GPU {gpu!r}: choose one of {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise PlanError(f"MFU {mfu}: give a fraction in (0, 1], e.g. 0.4")
    plan = dict(plan_dict(spec_of_config(cfg, text_encoder=True, vae=True)))
    memory = GPUS[gpu][1] * GiB
    swap = transfer_seconds(plan.get("step_transfer_bytes", 0), gpu)
    seconds = step_seconds(plan["step_flops"], gpu, mfu) + swap if plan["step_flops"] else None
    steps = steps if steps is not None else cfg.steps
    plan.update(
        gpu=gpu,
        gpu_memory=memory,
        mfu=mfu,
        fits=plan["peak_bytes"] <= memory * MARGIN,
        step_seconds=seconds,
        transfer_seconds=swap,
        hours=None if seconds is None else seconds * steps / 3600,
        steps=steps,
    )
    return plan
