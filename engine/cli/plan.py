"""`python -m engine plan`: peak device memory, host memory, FLOPs and step time of each stage of a
distillation run at real size, computed on fake tensors before anything runs (engine.plan)."""

from __future__ import annotations

import argparse
import json
import sys

from ..plan.spec import ALIASES, BASES, PRECISIONS, SHARDING, TASKS, PlanError, PlanSpec
from ..plan.timing import DEFAULT_MFU, GPUS, step_seconds, transfer_seconds
from .progress import CliError


def add_parsers(sub) -> None:
    p = sub.add_parser("plan", help="memory and time of a run at real size, planned without a GPU")
    p.add_argument(
        "--base",
        default="wan2.1-1.3b",
        help=f"the base: {', '.join(sorted(set(BASES) | set(ALIASES)))} or a diffusers folder",
    )
    p.add_argument("--task", default="t2v", choices=TASKS)
    p.add_argument("--frames", type=int, default=81, help="frames per clip, 4k+1")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--batch", type=int, default=1, help="clips per GPU")
    p.add_argument("--precision", default="bf16", choices=PRECISIONS, help="the frozen base's dtype")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--rank", type=int, default=32, help="LoRA rank of the student and fake-score adapters")
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--sharding", default="none", choices=SHARDING)
    p.add_argument(
        "--vae-tiling", action="store_true", help="encode the data's clips in tiles (less memory, more VAE FLOPs)"
    )
    p.add_argument(
        "--block-swap",
        type=int,
        default=0,
        help="keep the last N blocks' frozen weights on the host, one brought in per forward (0: off)",
    )
    p.add_argument(
        "--base-int8",
        action="store_true",
        help="the frozen base's block Linear weights in int8 (torchao weight-only, a per-row scale)",
    )
    p.add_argument("--guidance", type=float, default=5.0, help="teacher CFG scale (above 1: a doubled batch)")
    p.add_argument("--gpu", default=None, choices=list(GPUS), help="the GPU to time the step on (default: all)")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="model FLOPs utilisation assumed for step time")
    p.add_argument("--steps", type=int, default=1000, help="steps of the run, for its hours")
    p.add_argument("--stages", default=None, help="comma-separated stages to plan (default: all)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--no-cache", action="store_true", help="plan afresh, not from the plan cache (DFD_PLAN_CACHE or ~/.cache)"
    )
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from ..plan.stages import STAGES  # torch: only when the command runs, not for --help

    spec = PlanSpec(
        base=args.base,
        task=args.task,
        frames=args.frames,
        height=args.height,
        width=args.width,
        batch=args.batch,
        precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing,
        rank=args.rank,
        gpus=args.gpus,
        sharding=args.sharding,
        guidance=args.guidance,
        vae_tiling=args.vae_tiling,
        block_swap=args.block_swap,
        base_int8=args.base_int8,
    )
    only = tuple(s.strip() for s in args.stages.split(",")) if args.stages else None
    if only and set(only) - set(STAGES):
        raise CliError(
            f"--stages {args.stages}: unknown {', '.join(sorted(set(only) - set(STAGES)))}; "
            f"choose from {', '.join(STAGES)}"
        )
    if not 0 < args.mfu <= 1:
        raise CliError(f"--mfu {args.mfu}: give a fraction in (0, 1], e.g. 0.4")
    try:
        spec.check()
    except PlanError as err:
        raise CliError(str(err)) from None
    from ..plan import make_plan  # torch and diffusers: only once the options are sound
    from ..plan.cache import cached_plan
    from ..plan.report import summary

    print(
        f"planning {spec.base} on fake tensors (about a minute a stage on a laptop CPU), unless the plan cache "
        "holds this spec's plan...",
        file=sys.stderr,
    )
    if args.no_cache:
        plan = make_plan(spec, only)
    else:
        plan, kept = cached_plan(spec, only)
        if kept:
            print("read from the plan cache (--no-cache plans afresh)", file=sys.stderr)
    if args.json:
        out = plan.to_dict()
        if plan.step_flops():
            gpus = [args.gpu] if args.gpu else list(GPUS)
            out["step_seconds"] = {
                g: step_seconds(plan.step_flops(), g, args.mfu) + transfer_seconds(plan.step_transfer(), g)
                for g in gpus
            }
            out["mfu"] = args.mfu
        print(json.dumps(out, indent=2))
    else:
        print(summary(plan, args.gpu, args.mfu, args.steps))
    return 0
