"""The I2V teacher's acceptance gate (docs/results/preregistration-i2v.md) from an `evaluate` JSON of a shapes
image-to-video base on the underspecified prompts: the frame's object kept over all clips (the gate: >= 0.90),
the first frame's PSNR, and on the prompts whose motion is free the motions drawn against what the exact
posterior shows in as many draws and the motion TV, also split by the frame's start law.

    python scripts/i2v_gate.py EVAL.json [--md OUT.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.shapes import world  # noqa: E402

GATE = 0.90


def rows(result: dict, model: str) -> list[dict]:
    frames = next(iter(result["per_prompt"][model].values())).get("frame_law", "edge")
    out = []
    for prompt, row in result["per_prompt"][model].items():
        law = world._stratified_law(prompt, frames) or "edge"
        out.append({**row, "prompt": prompt, "law": law, "free": "motion" not in world.parse_caption(prompt)})
    return out


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def table(result: dict) -> str:
    lines = [
        "| model | frame's object kept (all) | first-frame PSNR dB | motions of 8 (free) | posterior's motions (free) "
        "| motion TV (free) | TV, centre frames | TV, edge frames | gate (>= 0.90 kept) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model in result["per_prompt"]:
        r = rows(result, model)
        free = [x for x in r if x["free"]]
        kept = _mean(x["frame_consistency"] for x in r)
        psnr = _mean(x["first_frame_psnr"] for x in r)
        psnr_text = "exact" if psnr > 100 else f"{psnr:.1f}"  # real clips start on the frame itself
        gate = "-" if model.startswith("real") else ("met" if kept >= GATE else "not met")
        lines.append(
            f"| {model} | {kept:.3f} | {psnr_text} | {_mean(x['mode_coverage'] for x in free):.2f} | "
            f"{_mean(x['posterior_motions'] for x in free):.2f} | {_mean(x['mode_tv'] for x in free):.3f} | "
            f"{_mean(x['mode_tv'] for x in free if x['law'] == 'centre'):.3f} | "
            f"{_mean(x['mode_tv'] for x in free if x['law'] == 'edge'):.3f} | {gate} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_json")
    parser.add_argument("--md", help="write the table here too")
    args = parser.parse_args()
    text = table(json.loads(Path(args.eval_json).read_text()))
    print(text, end="")
    if args.md:
        Path(args.md).write_text(text)


if __name__ == "__main__":
    main()
