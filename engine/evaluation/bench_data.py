"""`python -m engine bench data-loading`: folder data with and without background workers
(DistillConfig.data_workers), side by side in one run, on the same clips.

For each worker count, from an empty cache: the time to prepare the data (every window decoded, resized
and encoded, every caption encoded: what a run does before its first step), then the time to take N
batches, each followed by a simulated training step of --step-ms (a sleep: a GPU step leaves the CPU
free, which is what reading ahead overlaps with). The batches of every worker count are compared with
the first's, so a figure is never bought with other data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..distill.folder_data import FolderData
from ..media.video import write_mp4
from ..models.base import load_base_model
from .bench import device_info


def generated_clips(folder: Path, clips: int, seconds: float, size: tuple[int, int], fps: int) -> Path:
    """`clips` captioned mp4 files of moving, noisy gradients (they compress like camera footage, not like flat
    colour), `seconds` long at `fps`, height x width = size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    for i in range(clips):
        frames = np.empty((int(seconds * fps), h, w, 3), np.uint8)
        for t in range(len(frames)):
            phase = (x + 3 * t + 17 * i) / w + (y - 2 * t) / h
            base = (np.stack([np.sin(phase * 6.3), np.cos(phase * 4.1), np.sin(phase * 2.7 + i)], -1) + 1) * 110
            frames[t] = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        write_mp4(folder / f"clip{i:03d}.mp4", frames, fps=fps)
        (folder / f"clip{i:03d}.txt").write_text(f"a moving gradient, clip {i}")
    return folder


def _digest(batch) -> str:
    return hashlib.sha1(batch.latents.numpy().tobytes() + batch.cond.float().numpy().tobytes()).hexdigest()


def bench_data_loading(
    base: str = "shapes-tiny",
    workers: tuple[int, ...] = (0, 2),
    data: str | None = None,
    clips: int = 12,
    seconds: float = 6.0,
    size: tuple[int, int] = (360, 640),
    fps: int = 30,
    batches: int = 50,
    batch_size: int = 8,
    step_ms: float = 0.0,
    windows_per_video: int = 0,
) -> dict:
    """Figures for each worker count (see the module's docstring); `data`: a folder or data-set config of
    your own instead of generated clips."""
    if any(w < 0 for w in workers) or not workers:
        raise ValueError(f"--workers must be counts >= 0 separated by commas, got {list(workers)}")
    if batches < 1 or batch_size < 1 or step_ms < 0:
        raise ValueError("--batches and --batch-size must be at least 1 and --step-ms at least 0")
    model = load_base_model(base, device="cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory(prefix="dfd-bench-data-") as tmp:
        source = data or str(generated_clips(Path(tmp) / "clips", clips, seconds, size, fps))
        rows, first = [], None
        for count in workers:
            start = time.perf_counter()
            folder_data = FolderData(
                source,
                model,
                seed=0,
                windows_per_video=windows_per_video,
                cache_dir=Path(tmp) / f"cache-{count}",
                workers=count,
            )
            prepare_s = time.perf_counter() - start
            digests = []
            start = time.perf_counter()
            for _ in range(batches):
                digests.append(_digest(folder_data.batch(batch_size)))
                time.sleep(step_ms / 1000)
            batches_s = time.perf_counter() - start
            folder_data.load_state(folder_data.state())  # stops its workers before the next count starts
            first = first or digests
            rows.append(
                {
                    "workers": count,
                    "prepare_s": round(prepare_s, 3),
                    "batches_s": round(batches_s, 3),
                    "ms_per_batch": round(1000 * batches_s / batches, 2),
                    "same_batches": digests == first,
                }
            )
        report = folder_data.report
    return {
        "what": "data-loading",
        "base": base,
        "data": data or f"{clips} generated clips, {seconds:g} s at {fps} fps, {size[1]}x{size[0]}",
        "windows": report.windows,
        "videos": report.videos_used,
        "window": f"{model.num_frames} frames at {model.fps:g} fps, {model.width}x{model.height}",
        "batches": batches,
        "batch_size": batch_size,
        "step_ms": step_ms,
        "results": rows,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        **device_info(),
    }


def table(result: dict) -> str:
    """The figures side by side, one line per worker count."""
    lines = [
        f"{result['data']} -> {result['windows']} windows of {result['window']}; {result['batches']} batches of "
        f"{result['batch_size']}, {result['step_ms']:g} ms simulated step",
        "workers  prepare_s  batches_s  ms_per_batch  same_batches",
    ]
    lines += [
        f"{r['workers']:>7}  {r['prepare_s']:>9.2f}  {r['batches_s']:>9.2f}  {r['ms_per_batch']:>12.2f}  "
        f"{r['same_batches']}"
        for r in result["results"]
    ]
    return "\n".join(lines)
