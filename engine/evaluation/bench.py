"""`python -m engine bench sampling|train-step`: speed and memory figures, printed and saved as JSON.

- sampling: the 4-step student against the 50-step CFG teacher on the same prompt, seeds and size,
  decode included, after a warm-up run of each, in interleaved rounds (3 by default; speedup: their median),
  and the peak memory of sampling.
- train-step: wall time of one student update and one fake-score update, peak memory, the model FLOPs
  of each (counted by torch's FlopCounterMode) and the utilisation against this device's measured
  matmul peak (bf16 on GPU, fp32 on CPU).
"""

from __future__ import annotations

import platform
import resource
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config.build import build_distill_config
from ..config.sample import SampleConfig
from ..core.timesteps import PAPER_T_LIST
from ..distill.trainer import Distiller
from ..generation.generate import StreamClock, sample_frames
from ..models.base import RANDOM_MODELS, load_base_model
from ..models.students import shipped_students


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _timed(fn, repeats: int = 3, warmup: bool = True) -> float:
    """Median wall time of fn(), after one warm-up call unless told otherwise."""
    if warmup:
        fn()
        _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return _median(times)


def device_info() -> dict:
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def matmul_peak_tflops(n: int = 4096 if torch.cuda.is_available() else 1024) -> float:
    """Measured dense matmul throughput of this device (bf16 on GPU, fp32 on CPU), in TFLOP/s."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = _timed(lambda: a @ b, repeats=5)
    return 2 * n**3 / seconds / 1e12


def bench_sampling(
    base: str,
    lora: str | None,
    videos: int = 8,
    prompt: str | None = None,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    rounds: int = 3,
) -> dict:
    """Student (its t_list, no CFG) vs teacher (50 steps, CFG 5): seconds per batch of `videos`.
    On a random-weights base there is no student: the 4-step sampler runs on the base, which is what a
    student costs (its LoRA is merged into the weights for sampling). A causal student's streaming figures
    come too: seconds to its first chunk and to its last (latents only, decoding excluded, as StreamClock
    times them), and the frames per second they make of the batch's videos."""
    model = load_base_model(base)
    t_list = None
    if lora is None and base in RANDOM_MODELS:
        t_list = list(PAPER_T_LIST)
    elif lora is None:
        shipped = [s for s in shipped_students() if s.base == base]
        if not shipped:
            raise ValueError(f"no shipped student for {base!r}: give a student LoRA folder to time")
        lora = str(shipped[0].lora_dir)
    prompt = prompt or "a red circle moving left on a dark background"
    seeds = list(range(1, videos + 1))
    num_frames, height, width = size
    shape = dict(num_frames=num_frames, height=height, width=width)
    student_cfg = SampleConfig(base=base, prompt=prompt, seeds=seeds, lora=lora, t_list=t_list, **shape).validate()
    teacher_cfg = SampleConfig(base=base, prompt=prompt, seeds=seeds, steps=50, guidance=5.0, **shape).validate()
    nfe, streamed = {}, []  # streamed: a causal student's streaming figures, one per run of this round

    def run(cfg, key):
        clock = StreamClock()
        _, nfe[key] = sample_frames(model, cfg, on_chunk=clock)
        if clock.figures() is not None:  # a causal student
            streamed.append(clock.figures())

    def timed_round() -> tuple[float, float, list[dict]]:
        streamed.clear()
        student = _timed(lambda: run(student_cfg, "student"), repeats=5, warmup=False)
        return student, _timed(lambda: run(teacher_cfg, "teacher"), repeats=1, warmup=False), list(streamed)

    # Interleaved rounds: a machine shared with other work drifts by tens of percent over a minute, so the two are
    # timed side by side in each round and the speedup is the median of the rounds' ratios. The student's
    # run is short (~0.15 s on the CPU), so each round takes the median of several.
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run(student_cfg, "student")
    run(teacher_cfg, "teacher")
    timings = [timed_round() for _ in range(rounds)]
    student_s = _median([s for s, _, _ in timings])
    teacher_s = _median([t for _, t, _ in timings])
    ratios = [t / s for s, t, _ in timings]
    frames = num_frames or model.num_frames
    stream = {}
    if timings[0][2]:  # a causal student's figures, reduced as student_s is: the median of the rounds' medians
        first = _median([_median([f["first_chunk_seconds"] for f in runs]) for _, _, runs in timings])
        every = _median([_median([f["all_chunks_seconds"] for f in runs]) for _, _, runs in timings])
        stream = {
            "student_first_chunk_s": round(first, 4),
            "student_all_chunks_s": round(every, 4),
            "student_frames_per_second": round(videos * frames / every, 1),
        }
    return {
        "kind": "sampling",
        "base": base,
        "lora": lora,
        "videos": videos,
        "video_shape": [frames, height or model.height, width or model.width],
        "student_s": round(student_s, 4),
        **stream,
        "teacher_s": round(teacher_s, 4),
        "speedup": round(_median(ratios), 2),
        "round_speedups": [round(r, 2) for r in ratios],
        "student_nfe": nfe["student"],
        "teacher_nfe": nfe["teacher"],
        "nfe_ratio": round(nfe["teacher"] / nfe["student"], 2),
        "peak_memory_mb": round(_peak_memory_mb(), 1),  # GPU: sampling alone; CPU: the process's resident peak
        "device": device_info(),
    }


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def update_flops(distiller) -> dict[str, int]:
    """Model FLOPs of one student update and one fake-score update (counted by torch's FlopCounterMode;
    running them also trains the run one update each)."""
    flops = {}
    for name, fn in (("student", distiller.student_update), ("fake", distiller.fake_update)):
        with FlopCounterMode(display=False) as counter:
            fn()
        flops[name] = counter.get_total_flops()
    return flops


def bench_train_step(
    base: str,
    batch_size: int | None = None,
    method: str = "dfd",
    gradient_checkpointing: bool = False,
    size: tuple[int | None, int | None, int | None] = (None, None, None),
    task: str = "t2v",
    student_input: str | None = None,
) -> dict:
    """Seconds, FLOPs and utilisation of one student update and one fake-score update; peak memory of
    the two (what DFD post-training holds). A random-weights base trains on synthetic latents. For task ar
    the student update is the whole chunk-by-chunk rollout (FLOPs counted as executed)."""
    values = dict(
        base=base, method=method, force_from_teacher=True, gradient_checkpointing=gradient_checkpointing, task=task
    )
    if student_input:
        values["student_input"] = student_input
    values["num_frames"], values["height"], values["width"] = size
    if base in RANDOM_MODELS or any(size):  # timing only: latents of the asked size, no data set needed
        values["data"] = "synthetic"
    if batch_size:
        values["batch_size"] = batch_size
    cfg = build_distill_config(values=values, check=False)
    cfg.steps = cfg.student_update_freq  # one student update and the fake-score updates around it
    out = Path("/tmp") / f"dfd-bench-{time.time_ns()}"
    distiller = Distiller(cfg, out)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    student_s = _timed(distiller.student_update)
    fake_s = _timed(distiller.fake_update)
    flops = update_flops(distiller)
    peak = matmul_peak_tflops()
    return {
        "kind": "train-step",
        "base": base,
        "task": cfg.task,
        "student_input": cfg.student_input,
        "batch_size": cfg.batch_size,
        "lora_rank": cfg.lora_rank,
        "video_shape": [distiller.model.num_frames, distiller.model.height, distiller.model.width],
        "dtype": str(distiller.model.dtype).replace("torch.", ""),
        "gradient_checkpointing": gradient_checkpointing,
        "student_update_s": round(student_s, 4),
        "fake_update_s": round(fake_s, 4),
        "student_update_tflop": round(flops["student"] / 1e12, 4),
        "fake_update_tflop": round(flops["fake"] / 1e12, 4),
        "matmul_peak_tflops": round(peak, 3),
        "student_mfu": round(flops["student"] / student_s / 1e12 / peak, 4),
        "fake_mfu": round(flops["fake"] / fake_s / 1e12 / peak, 4),
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "device": device_info(),
    }
