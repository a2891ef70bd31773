"""Peak memory of a training-data pass against the number of clips: folder data keeps latents and caption
embeddings on disk and reads a batch's files when it is drawn, so the figure should not grow with the
data set. Prints one row per size.

    OMP_NUM_THREADS=1 python scripts/data_memory.py --clips 50 500            # first pass: encodes
    OMP_NUM_THREADS=1 python scripts/data_memory.py --clips 50 500 --cached   # a second run: reads the cache

Each size runs in a fresh process: the tiny random Wan2.1 pipeline of the real classes (tests/tiny_wan.py)
at 9x128x128, a folder of N clips with distinct captions, the cache built (VAE and text encoder), then
`--batches` batches of `--batch-size` drawn. Peak RSS is the process's high-water mark; "stacked" is what
holding every clip's latent and embedding in memory would take instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (9, 128, 128)  # frames, height, width of a training window


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024**2


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_folder(folder: Path, n: int) -> None:
    import numpy as np

    from engine.media.video import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        if not (folder / f"clip{i:05d}.mp4").is_file():
            write_mp4(folder / f"clip{i:05d}.mp4", rng.integers(0, 255, (12, 96, 128, 3), dtype=np.uint8), fps=16)
        (folder / f"clip{i:05d}.txt").write_text(f"a red circle moving left number {i}")


def measure(base: Path, folder: Path, batches: int, batch_size: int) -> dict:
    """In this process: build the data set and draw batches; the memory figures."""
    import torch

    from engine.distill.folder_data import FolderData
    from engine.models.base import load_base_model

    model = load_base_model(str(base), device="cpu")
    model.set_video_shape(*SHAPE)
    before = rss_mb()
    started = time.perf_counter()
    data = FolderData(folder, model, min_clips=batch_size)
    built_s, after_build = time.perf_counter() - started, peak_mb()
    started = time.perf_counter()
    for _ in range(batches):
        batch = data.batch(batch_size)
    draw_s = time.perf_counter() - started
    latent = batch.latents[0].numel() * 4
    text = batch.cond[0].numel() * batch.cond.element_size()
    return {
        "clips": data.report.windows,
        "rss_model_mb": round(before),
        "peak_build_mb": round(after_build),
        "peak_mb": round(peak_mb()),
        "rss_end_mb": round(rss_mb()),
        "build_s": round(built_s, 1),
        "ms_per_batch": round(1000 * draw_s / batches, 1),
        "stacked_mb": round(data.report.windows * (latent + text) / 1024**2, 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cached", action="store_true", help="measure a second pass: the folders' caches kept")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dfd-data-memory"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: measure this size
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    base = args.workdir / "tiny-wan"
    if args.one is not None:
        print(json.dumps(measure(base, args.workdir / f"clips{args.one}", args.batches, args.batch_size)))
        return
    if not (base / "model_index.json").is_file():
        from tiny_wan import save_tiny_wan

        save_tiny_wan(base)
    print(
        f"tiny Wan2.1 (real classes) at {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, {args.batches} batches of {args.batch_size}",
        flush=True,
    )
    print("clips  peak RSS build  peak RSS  RSS end  stacked would hold  build s  ms/batch")
    for n in args.clips:
        make_folder(args.workdir / f"clips{n}", n)
        if not args.cached:  # the build then includes encoding every window and caption
            shutil.rmtree(args.workdir / f"clips{n}" / ".dfd_cache", ignore_errors=True)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--workdir",
                str(args.workdir),
                "--batches",
                str(args.batches),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            sys.exit(f"the measurement of {n} clips failed:\n{out.stderr[-2000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['clips']:5d}  {r['peak_build_mb']:11d} MB  {r['peak_mb']:5d} MB  {r['rss_end_mb']:4d} MB  "
            f"{r['stacked_mb']:15.1f} MB  {r['build_s']:7.1f}  {r['ms_per_batch']:8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
