"""The steps of scripts/gpu_check.sh that need Python: a folder of generated clips, a timed training run
(DMD2, then DFD from it) on that folder, and the summary against the performance targets.

    python scripts/gpu_check.py clips FOLDER --n 4 --seconds 6 --fps 16 --height 480 --width 832
    python scripts/gpu_check.py train --base wan2.1-1.3b-random --data FOLDER --method dmd2 --steps 20 \
        --out RUN --json RUN.json [--init DMD2_RUN] [--num-frames 81 --height 480 --width 832] \
        [--gradient-checkpointing]
    python scripts/gpu_check.py train ... --experts-blocks 4   # Wan2.2-A14B's two experts, 4 of 40 blocks each
    python scripts/gpu_check.py summary OUT_FOLDER

The training run is the engine's own Distiller with its own data path (the folder's windows encoded to
latents, captions to embeddings); the script adds per-step wall times, the peak memory of the training
steps (the data encoding before them is reported apart), and the FLOPs of one student and one fake-score
update counted by torch's FlopCounterMode after the timed steps, from which the run's MFU follows. The
end-of-run previews are left out (the sampling bench times 4-step sampling on its own).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The performance targets of the issue: MFU per update, the DFD peak, 4-step sampling end to end.
TARGET_MFU = 0.40
TARGET_DFD_PEAK_GB = 22.0
TARGET_SAMPLING_S = 5.0
WORDS = ["a", "video", "of", "red", "blue", "bars", "moving", "left", "right", "slowly", "quickly", "on", "grey"]


def make_clips(folder: Path, n: int, seconds: float, fps: int, height: int, width: int) -> list[Path]:
    """n mp4 clips of moving colour bars with a caption file each (sidecar .txt), deterministic."""
    from engine.media.video import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = int(round(seconds * fps))
    x = np.arange(width)[None, :]
    paths = []
    for i in range(n):
        colour = rng.integers(40, 255, size=3)
        speed = (1 + i) * width / frames / 2 * (1 if i % 2 == 0 else -1)
        video = np.empty((frames, height, width, 3), dtype=np.uint8)
        for f in range(frames):
            bars = (((x + speed * f) // max(width // 8, 1)) % 2).astype(np.uint8)  # (1, W)
            video[f] = np.where(bars[..., None] == 1, colour, 90)[0][None]
        path = write_mp4(folder / f"clip{i:03d}.mp4", video, fps=fps)
        words = rng.choice(WORDS, size=12)
        path.with_suffix(".txt").write_text(" ".join(words) + "\n")
        paths.append(path)
    return paths


def _peak_mb(torch) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Timer:
    """Callbacks that note the wall time of every step and whether it updated the student."""

    def __init__(self):
        from engine.distill.trainer import Callbacks

        class Recorder(Callbacks):
            def on_step(inner, step, total, terms, it_per_s, eta_s):
                now = time.perf_counter()
                self.steps.append(
                    {"step": step, "kind": "student" if "loss_student" in terms else "fake", "s": now - self.last}
                )
                self.last = now

        self.callbacks = Recorder()
        self.steps: list[dict] = []
        self.last = time.perf_counter()


def train(args) -> dict:
    """One timed run; returns (and writes to args.json) its figures."""
    import torch

    from engine.config.build import build_distill_config
    from engine.distill.trainer import Distiller
    from engine.evaluation.bench import device_info, matmul_peak_tflops, update_flops

    values = dict(
        base=args.base,
        data=args.data,
        method=args.method,
        steps=args.steps,
        batch_size=args.batch_size,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every=args.steps,
        seed=0,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
    )
    if args.init:
        values["init"] = args.init
    if args.student_update_freq:
        values["student_update_freq"] = args.student_update_freq
    started = time.perf_counter()
    model = None
    if args.experts_blocks:  # Wan2.2-A14B's two experts at real width, a few blocks each (random weights)
        from engine.config.distill import DistillConfig
        from engine.models.random_bases import random_wan22_a14b

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = random_wan22_a14b(device, torch.bfloat16 if device == "cuda" else torch.float32, args.experts_blocks)
        values["base"] = model.source  # a label: the model is handed to the trainer, not loaded by name
        cfg = DistillConfig(**{k: v for k, v in values.items() if v is not None}).validate()
    else:
        cfg = build_distill_config(values={k: v for k, v in values.items() if v is not None})
    timer = _Timer()
    distiller = Distiller(cfg, Path(args.out), model=model, callbacks=timer.callbacks)
    distiller.write_previews = lambda *a, **k: []  # sampling is the sampling bench's figure
    setup_s = time.perf_counter() - started
    setup_peak = _peak_mb(torch)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timer.last = time.perf_counter()
    distiller.train()
    train_peak = _peak_mb(torch)
    flops = update_flops(distiller)
    peak_tflops = matmul_peak_tflops()
    timed = timer.steps[1:] if len(timer.steps) > 1 else timer.steps  # the first step warms the kernels up
    seconds = sum(s["s"] for s in timed)
    work = sum(flops[s["kind"]] for s in timed)
    per_kind = {k: [s["s"] for s in timed if s["kind"] == k] for k in ("student", "fake")}
    figures = {
        "kind": "gpu-check-train",
        "method": args.method,
        "base": cfg.base,
        "experts_blocks": args.experts_blocks,
        "steps": len(timer.steps),
        "batch_size": cfg.batch_size,
        "lora_rank": cfg.lora_rank,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "video_shape": [distiller.model.num_frames, distiller.model.height, distiller.model.width],
        "dtype": str(distiller.model.dtype).replace("torch.", ""),
        "clips": len(distiller.data.captions),
        "setup_s": round(setup_s, 2),
        "setup_peak_mb": round(setup_peak, 1),
        "step_s_mean": round(seconds / max(len(timed), 1), 4),
        "student_update_s_median": round(float(np.median(per_kind["student"])), 4) if per_kind["student"] else None,
        "fake_update_s_median": round(float(np.median(per_kind["fake"])), 4) if per_kind["fake"] else None,
        "student_update_tflop": round(flops["student"] / 1e12, 4),
        "fake_update_tflop": round(flops["fake"] / 1e12, 4),
        "matmul_peak_tflops": round(peak_tflops, 3),
        "mfu": round(work / max(seconds, 1e-9) / 1e12 / peak_tflops, 4),
        "train_peak_mb": round(train_peak, 1),
        "step_times_s": [round(s["s"], 4) for s in timer.steps],
        "device": device_info(),
    }
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def summary(out: Path) -> dict:
    """Everything the check measured in one JSON (gpu_check.json), each target with its verdict."""
    runs = {name: _read(out / f"train_{name}.json") for name in ("dmd2", "dfd")}
    step = _read(out / "bench_train_step.json")
    sampling = _read(out / "bench_sampling.json")
    checks = []
    if step:
        for kind in ("student", "fake"):
            checks.append(
                (
                    f"{kind} update MFU (bench, checkpointing)",
                    step[f"{kind}_mfu"],
                    f">= {TARGET_MFU}",
                    step[f"{kind}_mfu"] >= TARGET_MFU,
                )
            )
        gb = step["peak_memory_mb"] * 2**20 / 1e9
        checks.append(
            (
                "DFD peak memory GB (bench, checkpointing)",
                round(gb, 2),
                f"<= {TARGET_DFD_PEAK_GB}",
                gb <= TARGET_DFD_PEAK_GB,
            )
        )
    if runs["dfd"]:
        gb = runs["dfd"]["train_peak_mb"] * 2**20 / 1e9
        checks.append(
            ("DFD peak memory GB (training run)", round(gb, 2), f"<= {TARGET_DFD_PEAK_GB}", gb <= TARGET_DFD_PEAK_GB)
        )
    if sampling:
        seconds = sampling.get("student_s", sampling.get("student_seconds"))
        if seconds is not None:
            checks.append(
                ("4-step sampling s (end to end)", seconds, f"<= {TARGET_SAMPLING_S}", seconds <= TARGET_SAMPLING_S)
            )
    other = {task: _read(out / f"bench_train_step_{task}.json") for task in ("i2v", "ar")}
    plan = _read(out / "plan_check.json")
    # the same stages with block swap and with the int8 base: their peaks and seconds beside the plain ones
    variants = {name: _read(out / f"plan_check_{name}.json") for name in ("block_swap", "int8")}
    result = {
        "plan_check": plan,
        **{f"plan_check_{name}": figures for name, figures in variants.items()},
        "runs": runs,
        "bench_train_step": step,
        "bench_sampling": sampling,
        **{f"bench_train_step_{task}": figures for task, figures in other.items()},
        "targets": [{"what": w, "value": v, "target": t, "met": bool(ok)} for w, v, t, ok in checks],
        "log": _read(out / "stages.json"),
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n== gpu check ==")
    for name, run in runs.items():
        if run:
            print(
                f"{name}: {run['steps']} steps at {run['video_shape']}, {run['step_s_mean']} s/step, "
                f"MFU {run['mfu']:.1%}, training peak {run['train_peak_mb'] / 1024:.2f} GiB "
                f"(data encoding {run['setup_peak_mb'] / 1024:.2f} GiB, {run['setup_s']} s)"
            )
        else:
            print(f"{name}: not run or failed (see gpu_check.log)")
    for task, figures in other.items():
        if figures:
            print(
                f"{task} train step at {figures['video_shape']}: student {figures['student_update_s']} s, fake score "
                f"{figures['fake_update_s']} s, peak {figures['peak_memory_mb'] / 1024:.2f} GiB"
            )
    for label, figures in (("", plan), *((f" ({name})", v) for name, v in variants.items())):
        for row in (figures or {}).get("stages", []):
            measured = "not measured (no GPU)" if row["measured_mb"] is None else f"measured {row['measured_mb']} MiB"
            ratio = "" if row["ratio"] is None else f", planned/measured {row['ratio']}"
            seconds = "" if row.get("seconds") is None else f", {row['seconds']} s"
            print(f"plan {row['stage']}{label}: planned {row['planned_mb']} MiB, {measured}{ratio}{seconds}")
    for what, value, target, ok in checks:
        print(f"{'MET ' if ok else 'MISS'} {what}: {value} (target {target})")
    if not step or not sampling:
        print("bench figures missing: see gpu_check.log")
    return result


def plan_check(args) -> dict:
    """Planned (engine.plan, on fake tensors) against measured (the same stage run for real on this device)
    peak increment of the training stages, written to --json."""
    import torch

    from engine.plan import make_plan
    from engine.plan.measure import measure_stage
    from engine.plan.spec import PlanSpec

    device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = PlanSpec(
        base=args.base,
        frames=args.frames,
        height=args.height,
        width=args.width,
        batch=1,
        precision="bf16" if device == "cuda" else "fp32",
        gradient_checkpointing=True,
        vae=False,
        text_encoder=False,
        block_swap=args.block_swap,
        base_int8=args.base_int8,
    ).check()
    stages = tuple(args.stages.split(","))
    plan = make_plan(spec, only=stages)
    rows = []
    for s in plan.stages:
        planned = s.peak - s.resident
        timing = {}
        measured = measure_stage(spec, s.name, device, timing) if device == "cuda" else None
        rows.append(
            {
                "stage": s.name,
                "planned_mb": round(planned / 2**20, 1),
                "measured_mb": None if measured is None else round(measured / 2**20, 1),
                "ratio": None if not measured else round(planned / measured, 3),
                "planned_peak_mb": round(s.peak / 2**20, 1),
                "block_swap": spec.block_swap,
                "base_int8": spec.base_int8,
                "planned_transfer_mb": round(s.transfer / 2**20, 1),
                "measured_transfer_mb": round(timing["transfer_bytes"] / 2**20, 1) if timing else None,
                "seconds": round(timing["seconds"], 3) if timing else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {"spec": spec.to_dict(), "device": device, "stages": rows, "planning_s": round(plan.seconds, 1)}
    Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("clips")
    c.add_argument("folder", type=Path)
    c.add_argument("--n", type=int, default=4)
    c.add_argument("--seconds", type=float, default=6.0)
    c.add_argument("--fps", type=int, default=16)
    c.add_argument("--height", type=int, default=480)
    c.add_argument("--width", type=int, default=832)
    t = sub.add_parser("train")
    for name in ("--base", "--data", "--method", "--out", "--json"):
        t.add_argument(name, required=True)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--init")
    t.add_argument("--batch-size", type=int, default=1)
    t.add_argument("--student-update-freq", type=int)
    for name in ("--num-frames", "--height", "--width"):
        t.add_argument(name, type=int)
    t.add_argument("--gradient-checkpointing", action="store_true")
    t.add_argument("--experts-blocks", type=int, help="train Wan2.2-A14B's two experts at real width, N blocks each")
    p = sub.add_parser("plan-check")
    for name in ("--base", "--json"):
        p.add_argument(name, required=True)
    for name, default in (("--frames", 81), ("--height", 480), ("--width", 832), ("--block-swap", 0)):
        p.add_argument(name, type=int, default=default)
    p.add_argument("--stages", default="fake_update,student_update_dfd,sampling")
    p.add_argument("--base-int8", action="store_true", help="the frozen base's block Linears in int8")
    s = sub.add_parser("summary")
    s.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "clips":
        paths = make_clips(args.folder, args.n, args.seconds, args.fps, args.height, args.width)
        print(f"{len(paths)} clips of {args.width}x{args.height} at {args.fps} fps, {args.seconds} s, in {args.folder}")
    elif args.command == "plan-check":
        plan_check(args)
    elif args.command == "train":
        figures = train(args)
        print(json.dumps({k: v for k, v in figures.items() if k not in ("step_times_s", "device")}))
    else:
        summary(args.out)


if __name__ == "__main__":
    main()
