"""Before a run starts: the plan against the device it has. A run whose planned peak does not fit the
device's memory is refused with the options that would make it fit, instead of running out of memory
an hour in."""

from __future__ import annotations

import torch

from .cache import cached_plan
from .planner import GiB, Plan
from .settings import MARGIN, spec_of_config
from .spec import EXPERTS, PlanError


class PlanDoesNotFit(ValueError):
    """The planned peak is over the device's free memory; the message lists what would make it fit."""


def options_to_fit(plan: Plan, free: int) -> list[str]:
    """What would bring the peak under `free`, each with its estimate from the plan's parts (activations
    and temporaries scale with tokens and batch, with flash attention linearly)."""
    spec, budget = plan.spec.check(), free * MARGIN  # checked: an alias resolved to the base it names
    worst = max((s for s in plan.stages if s.name != "text_encoding"), key=lambda s: s.peak)
    fixed = worst.parts["weights"] + worst.parts["lora_optimizer"]
    varying = worst.peak - fixed
    out = []
    if not spec.gradient_checkpointing:
        out.append("turn on gradient checkpointing (recomputes each block in the backward: ~30% more time)")
    if spec.batch > 1:
        batch = max(1, int(spec.batch * (budget - fixed) / max(varying, 1)))
        if batch < spec.batch:
            out.append(
                f"batch {batch} per GPU with grad_accum {-(-spec.batch // max(batch, 1))} (same update, "
                "same time per sample)"
            )
    frames = int((spec.frames - 1) * (budget - fixed) / max(varying, 1)) // 4 * 4 + 1
    if 1 <= frames < spec.frames:
        out.append(f"windows of {frames} frames instead of {spec.frames} (fewer tokens per clip)")
    lora = worst.parts["lora_optimizer"]
    # the adapters, their gradients and AdamW's two moments all scale with the rank (a multiple of 4 kept)
    rank = int(spec.rank * (budget - (worst.peak - lora)) / max(lora, 1)) // 4 * 4
    if 4 <= rank < spec.rank:
        out.append(f"LoRA rank {rank} instead of {spec.rank} (the adapters and their optimizer state shrink with it)")
    swappable = spec.gradient_checkpointing and spec.sharding != "fsdp2" and spec.base not in EXPERTS
    layers = spec.configs()[0].get("num_layers", 0) if swappable else 0
    if layers and worst.peak > budget:
        block = worst.parts["weights"] / (layers - spec.block_swap + 1 if spec.block_swap else layers)
        blocks = spec.block_swap + int((worst.peak - budget) // max(block, 1)) + 1
        if blocks < layers:
            out.append(
                f"block_swap {blocks} (those blocks' frozen weights on the host, one on the GPU at a time: a PCIe "
                "copy of each per forward, `engine plan --block-swap` times it)"
            )
    int8_runs = spec.gpus == 1 and not spec.block_swap  # where base_int8 runs
    if int8_runs and not spec.base_int8 and worst.peak > budget:
        out.append(
            f"base_int8 (the blocks' Linear weights in int8: about {worst.parts['weights'] / 2 / GiB:.1f} GiB less; "
            "its speed on a GPU is unmeasured)"
        )
    if fixed > budget * 0.5:
        out.append("FSDP2 over more GPUs (the frozen weights and the adapters' state are split between them)")
    if not out:
        out.append("a GPU with more memory")
    return out


def check_plan(plan: Plan, free: int, device: str = "the GPU") -> None:
    """Raise PlanDoesNotFit when the plan's peak is over MARGIN of `free` bytes."""
    peak = plan.peak()
    if peak <= free * MARGIN:
        return
    options = "; ".join(options_to_fit(plan, free))
    raise PlanDoesNotFit(
        f"this run is planned to need {peak / GiB:.1f} GiB on {device}, which has {free / GiB:.1f} GiB free "
        f"({MARGIN:.0%} usable): it would run out of memory. To fit: {options}. "
        "See `python -m engine plan` for the stages and their parts."
    )


def preflight(cfg, device: str, world: int, log=None, free: int | None = None) -> Plan | None:
    """The trainer's check before loading the base: plan the training stages of `cfg` and compare them with
    the device's free memory (torch.cuda.mem_get_info, or `free` given). Only on CUDA devices, only for
    the bases the plan knows; returns the plan, or None where none was made."""

    if free is None:
        if not str(device).startswith("cuda"):
            return None

        free = torch.cuda.mem_get_info(torch.device(device))[0]
    try:
        spec = spec_of_config(cfg, world)
    except PlanError:
        return None
    plan, kept = cached_plan(spec, only=("fake_update", "student_update_dmd2", "student_update_dfd"))
    if log is not None:
        how = "planned before, read from the plan cache" if kept else f"planned in {plan.seconds:.0f} s"
        log(f"plan: peak {plan.peak() / GiB:.1f} GiB of {free / GiB:.1f} GiB free on {device} ({how})")
    check_plan(plan, free, device)
    return plan
