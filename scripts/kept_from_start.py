"""The share of free-factor clips a post-trained student keeps from its start, per training seed
(engine/evaluation/kept_from_start.py; docs/results.md, "Why DFD leaves image-to-video students in place").

    python scripts/kept_from_start.py docs/results/study-i2v-mixed-records dmd2-continued,dfd-p0.5 --factor motion
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation.kept_from_start import KeptError, kept_from_start  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="a study's records or run folder (seed*/<run>/eval.json)")
    p.add_argument("runs", help="comma list of post-trained runs, e.g. dmd2-continued,dfd-p0.5")
    p.add_argument("--factor", default="motion", choices=["shape", "colour", "motion", "background"])
    p.add_argument("--start", default="dmd2", help="the run they started from (default dmd2)")
    args = p.parse_args()
    try:
        for name in args.runs.split(","):
            kept = kept_from_start(args.folder, name.strip(), args.factor, args.start)
            seeds = "; ".join(f"seed {s} {k}/{n} = {k / n:.2f}" for s, (k, n, _) in kept.items() if n)
            k_all, n_all, c_all = (sum(v[i] for v in kept.values()) for i in range(3))
            print(
                f"{name.strip()} keeps {args.start}'s {args.factor}: {seeds}; all {k_all / max(n_all, 1):.2f}, "
                f"by chance (the same mixes, unpaired) {c_all / max(n_all, 1):.2f}"
            )
    except KeptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
