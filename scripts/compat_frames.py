"""The reference frames tests/test_compatibility.py compares with: the uint8 videos sample_frames returns for
the shipped base (teacher, 8 steps, CFG 5) and its students shipped before the engine was grouped into
subpackages (each on its own t_list), one prompt, seeds 1-2. Frames, not digests: float results differ
between CPUs (BLAS, oneDNN and vectorised code paths), so the test compares them within a bound.

    OMP_NUM_THREADS=1 python scripts/compat_frames.py write                    # tests/data/shipped_sampling_frames.npz
    OMP_NUM_THREADS=2 python scripts/compat_frames.py write --out /tmp/b.npz   # the same on another setting
    python scripts/compat_frames.py compare tests/data/shipped_sampling_frames.npz /tmp/b.npz

compare prints, per video set, the largest and the mean absolute difference in levels (0-255), the share of
values that differ and the PSNR in dB (inf when identical): how the bounds in the test were measured.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FRAMES = ROOT / "tests" / "data" / "shipped_sampling_frames.npz"
PROMPT = "a red circle moving left on a dark background"
SEEDS = [1, 2]
MADE_BY = "OMP_NUM_THREADS=1 python scripts/compat_frames.py write"


def sample_configs() -> dict:
    """{name: SampleConfig} for the teacher at 8 steps and each shapes-tiny student shipped before the grouping
    (the I2V and causal students came after it: nothing to compare)."""
    from engine.config.sample import SampleConfig
    from engine.models.students import shipped_students

    configs = {"teacher@8": SampleConfig(prompt=PROMPT, seeds=SEEDS, steps=8)}
    for student in shipped_students():
        if student.base == "shapes-tiny" and not student.info.get("causal"):
            configs[student.name] = SampleConfig(prompt=PROMPT, seeds=SEEDS, lora=str(student.lora_dir))
    return configs


def load(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """({name: uint8 frames}, metadata) from a file `write` made."""
    with np.load(path) as stored:
        meta = json.loads(str(stored["meta"]))
        return {name: stored[name] for name in meta["videos"]}, meta


def deviation(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Largest and mean absolute difference in levels, the share of values that differ at all, and the PSNR in
    dB (peak 255; inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"frames of shape {a.shape} and {b.shape} cannot be compared")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
    return {"max": int(diff.max()), "mean": float(diff.mean()), "changed": float(np.mean(diff > 0)), "psnr": psnr}


def write(out: Path) -> None:
    import torch

    from engine.generation.generate import sample_frames
    from engine.models.base import load_base_model

    base = load_base_model("shapes-tiny")
    videos, nfes = {}, {}
    for name, config in sample_configs().items():
        videos[name], nfes[name] = sample_frames(base, config.validate())
    meta = {
        "what": "uint8 frames (seeds, frames, height, width, 3) sample_frames returns, and its NFE per video; "
        f"prompt {PROMPT!r}, seeds {SEEDS}, the teacher at 8 steps CFG 5, each student on its own t_list",
        "made_by": MADE_BY,
        "torch": torch.__version__,
        "videos": nfes,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")  # a failed write never replaces a good file
    np.savez_compressed(partial, meta=np.array(json.dumps(meta)), **videos)
    partial.replace(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB): " + ", ".join(f"{n} nfe {v}" for n, v in nfes.items()))


def compare(a_path: Path, b_path: Path) -> None:
    a, _ = load(a_path)
    b, _ = load(b_path)
    for name in sorted(set(a) & set(b)):
        d = deviation(a[name], b[name])
        print(
            f"{name:16s} max {d['max']:3d}  mean {d['mean']:.5f}  changed {d['changed']:.2%}  psnr {d['psnr']:.1f} dB"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("write", help="sample the reference videos").add_argument("--out", type=Path, default=FRAMES)
    cmp = sub.add_parser("compare", help="how far two files of frames differ")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.out)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
