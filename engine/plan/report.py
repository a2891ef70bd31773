"""A plan as a table (stage x parts, peak, host memory, FLOPs) and, for a named GPU, step time at a stated
MFU and the hours of a run."""

from __future__ import annotations

from .planner import GiB, Plan
from .spec import PlanSpec
from .timing import GPUS, step_seconds, transfer_seconds
from .tracker import PARTS

_HEADERS = {"weights": "weights", "lora_optimizer": "LoRA+opt", "activations": "activ.", "temporaries": "temp."}


def table(plan: Plan) -> str:
    """Per stage: the parts at its device peak, the peak, the host memory and the TFLOPs, in GiB."""
    rows = [["stage", *(_HEADERS[p] for p in PARTS), "peak GiB", "host GiB", "TFLOP"]]
    for s in plan.stages:
        rows.append(
            [
                s.name,
                *(f"{s.parts[p] / GiB:.2f}" for p in PARTS),
                f"{s.peak / GiB:.2f}",
                f"{s.host / GiB:.1f}",
                f"{s.flops / 1e12:.1f}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines)


def summary(plan: Plan, gpu: str | None, mfu: float, steps: int) -> str:
    spec: PlanSpec = plan.spec
    _, c, f, h, w = spec.latent_shape()
    lines = [
        f"{spec.base} {spec.task} {spec.frames}x{spec.height}x{spec.width} (latent {c}x{f}x{h}x{w}, "
        f"{spec.tokens()} tokens), batch {spec.batch} per GPU, {spec.precision}, gradient checkpointing "
        f"{'on' if spec.gradient_checkpointing else 'off'}, LoRA rank {spec.rank}, "
        f"{spec.sharding} over {spec.gpus} GPU(s)"
        + (f", block swap {spec.block_swap}" if spec.block_swap else "")
        + (", int8 frozen base" if spec.base_int8 else ""),
        table(plan),
        f"run peak (highest stage after text encoding, whose encoder is freed once the embeddings are cached): "
        f"{plan.peak() / GiB:.2f} GiB per GPU",
    ]
    notes = [f"{s.name}: {s.note}" for s in plan.stages if s.note]
    lines += notes
    flops, moved = plan.step_flops(), plan.step_transfer()
    if flops:
        lines.append(
            f"FLOPs per step ({spec.student_update_freq - 1} fake-score updates to 1 student update): "
            f"{flops / 1e12:.1f} TFLOP per GPU"
        )
        if moved:
            lines.append(
                f"block swap: {moved / GiB:.2f} GiB host to GPU per step, timed at the link's nominal rate "
                "(PCIe 4.0 x16 31.5 GB/s, 5.0 x16 63 GB/s on H100/H200), not overlapped with compute"
            )
        for name in [gpu] if gpu else list(GPUS):
            swap = transfer_seconds(moved, name)
            seconds = step_seconds(flops, name, mfu) + swap
            fits = "fits" if plan.peak() <= GPUS[name][1] * GiB * 0.92 else "does NOT fit"
            lines.append(
                f"  {name}: {seconds:.2f} s/step at {mfu:.0%} MFU"
                + (f" ({swap:.2f} s of it block swap)" if moved else "")
                + f", {steps} steps {seconds * steps / 3600:.2f} h x {spec.gpus} GPU(s); {fits} in its "
                f"{GPUS[name][1]:.0f} GiB"
            )
    lines.append(f"planned on fake tensors in {plan.seconds:.0f} s; planned, not measured on a GPU")
    return "\n".join(lines)
