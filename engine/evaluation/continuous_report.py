"""How models spread over the shapes world's continuous factors against real clips, and whether the reader of
those factors is right: what scripts/continuous_factors.py measures and writes (docs/results.md,
"Continuous factors and motion speed").

- validate: continuous_factors' reading error on real clips with known factors, as rendered, through the
  base's autoencoder, and blurred or sharpened to the sharpness range students show (0.5x to 2.5x decoded).
- measure: per group of models on one base (text-to-video, image-to-video, causal), each model's clips on a
  prompt set read and compared with real clips of the same prompt (for an image-to-video base, the world's
  continuations of the prompt's first frame), per caption regime; and every clip's speed, for the figure.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..shapes import world
from . import continuous_factors as cf
from . import metrics

REGIMES = ("detailed", "underspecified")
KINDS = {"motion named": True, "motion free": False}  # does the caption name the motion
STILL = 0.3  # px/frame of centroid path below which a clip's object stands still (the world's slowest: 0.6)
_REAL_SEED = 2_000_003  # away from the evaluation's seeds and the study's reference clips


def _uniform_clips(n: int, seed: int) -> tuple[np.ndarray, list[world.ClipFactors]]:
    rng = np.random.default_rng(seed)
    factors = [world.draw_factors(rng, world.uniform_naming(rng)) for _ in range(n)]
    return np.stack([world.render(f) for f in factors]), factors


def validate(n: int = 256, seed: int = 0, base: str = "shapes-tiny", progress=print) -> list[dict]:
    """The reader's error per condition on n real clips whose discrete factors are drawn uniformly."""
    # torch: the autoencoder and the sharpness matching load models; the reader itself is numpy
    from ..models.base import load_base_model
    from .reader_check import match_sharpness
    from .reference import through_decoder

    real, factors = _uniform_clips(n, seed)
    decoded = through_decoder(load_base_model(base, device="cpu"), real)
    target = metrics.sharpness(decoded[:32])
    conditions = [("real", "as rendered", real), ("decoded", "autoencoder round trip", decoded)]
    for ratio in (0.5, 2.5):
        clips, how = match_sharpness(decoded, ratio * target)
        conditions.append((f"decoded at {ratio:g}x decoded sharpness", how, clips))
    rows = []
    for kind, how, clips in conditions:
        row = {"condition": kind, "setting": how, **cf.reading_error(cf.read_clips(clips), factors)}
        rows.append(row)
        progress(f"{kind}: speed MAE {row['speed']['mae']}, size MAE {row['size']['mae']}, unread {row['unread']}")
    return rows


def real_readings(prompt: str, n: int, i2v: bool) -> list[dict | None]:
    """The reader's readings of n real clips of the prompt (for image-to-video: continuations of its frame)."""
    named, seed = world.parse_caption(prompt), zlib.crc32(prompt.encode()) + _REAL_SEED
    if i2v:
        clips, _ = world.continuations(world.conditioning_clip(prompt), n, seed, named)
    else:
        clips, _ = world.sample_clips(named, n, seed)
    return cf.read_clips(clips)


def measure(
    models: list[str], base: str, prompts: str = "all", seeds: int = 8, real_clips: int = 32, progress=print
) -> dict:
    """Every model's continuous factors on the prompt set against real clips: per prompt, per regime, and
    every read clip's speed per regime (real's included)."""
    # torch: sampling loads the base and the students
    from .evaluate import Session
    from .settings import EvalSettings
    from .specs import ModelSpec

    session = Session(EvalSettings(models=models, prompts=prompts, seeds=seeds, base=base, device="cpu"), True)
    session.load(True)
    chosen = world.prompt_set(prompts)
    real = {p: real_readings(p, real_clips, session.i2v) for p in chosen}
    speeds = {"real": _speeds(real, chosen)}
    out = {"base": base, "task": "i2v" if session.i2v else "t2v", "models": {}}
    for name in models:
        spec, per_prompt, read = ModelSpec.parse(name), {}, {}
        for prompt in chosen:
            clips, _, _ = session.sample(spec, prompt, list(range(1, seeds + 1)))
            read[prompt] = cf.read_clips(clips)
            per_prompt[prompt] = cf.compare(read[prompt], real[prompt])
        by_regime = {
            regime: cf.summarize([per_prompt[p] for p in world.prompt_set(regime) if p in per_prompt])
            for regime in REGIMES
            if any(p in per_prompt for p in world.prompt_set(regime))
        }
        out["models"][name] = {"by_regime": by_regime, "per_prompt": per_prompt, "motion": motion_summary(read)}
        speeds[name] = _speeds(read, chosen)
        shown = by_regime.get("detailed") or next(iter(by_regime.values()))
        progress(f"{name}: speed {shown['speed']['mean']} (real {shown['speed']['real_mean']})")
    out["speeds"] = speeds
    out["real_motion"] = motion_summary(real)
    return out


def motion_summary(readings: dict[str, list]) -> dict[str, dict]:
    """How the clips move, over the read clips of the prompts that name the motion and of those that leave it
    free: mean net speed, path speed and straightness, and the share of clips whose object stands still."""
    out = {}
    for kind, named in KINDS.items():
        rows = [r for p, read in readings.items() if ("motion" in world.parse_caption(p)) == named for r in read if r]
        if not rows:
            continue
        path = np.array([r["path_speed"] for r in rows])
        out[kind] = {
            "clips": len(rows),
            "speed": _mean_of(r["speed"] for r in rows),
            "path_speed": _mean_of(path),
            "straightness": _mean_of(r["straightness"] for r in rows),
            "still": round(float((path < STILL).mean()), 4),
        }
    return out


def _speeds(readings: dict[str, list], prompts: list[str]) -> dict[str, list[float]]:
    return {
        regime: [round(r["speed"], 4) for p in world.prompt_set(regime) if p in prompts for r in readings[p] if r]
        for regime in REGIMES
        if any(p in prompts for p in world.prompt_set(regime))
    }


def speed_summary(values: list[float], real: list[float]) -> dict:
    """Mean, quartiles and mean ratio to real of a set of clip speeds."""
    v = np.array(values, np.float64)
    if not len(v):
        return {"clips": 0}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {
        "clips": len(v),
        "mean": round(float(v.mean()), 4),
        "q1": round(float(q1), 4),
        "median": round(float(med), 4),
        "q3": round(float(q3), 4),
        "vs_real": round(float(v.mean() / np.mean(real)), 3) if len(real) else None,
    }


def speed_by_naming(group: dict) -> dict[str, dict[str, float | None]]:
    """Per model (real first), the mean over prompts of its clips' mean speed, for prompts that name the motion
    and for those that leave it free (a motion left free is decided by the model, not the caption)."""
    names = list(group["models"])
    out = {}
    for name in ["real", *names]:
        key, model = ("real_mean", names[0]) if name == "real" else ("mean", name)
        rows = group["models"][model]["per_prompt"]
        out[name] = {
            kind: _mean_of(rows[p]["speed"][key] for p in rows if ("motion" in world.parse_caption(p)) == named)
            for kind, named in (("motion named", True), ("motion free", False))
        }
    return out


def _mean_of(values) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return round(float(np.mean(v)), 4) if v else None


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def to_markdown(result: dict) -> str:
    """The validation table, the speed table and the per-factor spread and distance tables per group."""
    lines = []
    if result.get("validation"):
        lines += [
            "**The reader on real clips with known factors** (absolute error: mean / 95th percentile)",
            "",
            "| condition | setting | unread | " + " | ".join(f"{n} ({cf.UNITS[n]})" for n in cf.FACTORS) + " |",
            "|---|---|---|" + "---|" * len(cf.FACTORS),
        ]
        for r in result["validation"]:
            cells = [f"{_f(r[n]['mae'])} / {_f(r[n]['p95'])}" for n in cf.FACTORS]
            lines.append(f"| {r['condition']} | {r['setting']} | {r['unread']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
    for group, g in result.get("groups", {}).items():
        lines += [
            f"**{group}** ({g['task']}, base {g['base']}): speed in px/frame (mean [q1, median, q3]; "
            "mean / real's mean)",
            "",
            "| model | regime | clips | speed | / real | unread |",
            "|---|---|---|---|---|---|",
        ]
        for name, by_regime in g["speed_summary"].items():
            for regime, s in by_regime.items():
                if not s.get("clips"):
                    continue
                unread = "-" if name == "real" else _f(g["models"][name]["by_regime"][regime]["unread"])
                lines.append(
                    f"| {name} | {regime} | {s['clips']} | {s['mean']:.3f} [{s['q1']:.3f}, {s['median']:.3f}, "
                    f"{s['q3']:.3f}] | {_f(s.get('vs_real'), 2)} | {unread} |"
                )
        naming = speed_by_naming(g)
        lines += [
            "",
            "Speed by whether the caption names the motion (mean over prompts of each prompt's mean speed, px/frame):",
            "",
            "| model | " + " | ".join(next(iter(naming.values()))) + " |",
            "|---|" + "---|" * len(next(iter(naming.values()))),
        ]
        lines += [f"| {name} | " + " | ".join(_f(v) for v in row.values()) + " |" for name, row in naming.items()]
        lines += [
            "",
            f"How the clips move (over clips): net speed and path speed (px/frame), straightness (net / path), "
            f"still (path under {STILL} px/frame):",
            "",
            "| model | caption | clips | net speed | path speed | straightness | still |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, motion in [("real", g.get("real_motion", {}))] + [
            (n, m.get("motion", {})) for n, m in g["models"].items()
        ]:
            for kind, m in motion.items():
                lines.append(
                    f"| {name} | {kind} | {m['clips']} | {_f(m['speed'])} | {_f(m['path_speed'])} | "
                    f"{_f(m['straightness'])} | {_f(m['still'])} |"
                )
        lines += [
            "",
            "Per-prompt spread (std) of each factor / real's, and Wasserstein-1 distance to real, mean over prompts:",
            "",
            "| model | regime | " + " | ".join(f"{n}: spread / real, W1" for n in cf.FACTORS) + " |",
            "|---|---|" + "---|" * len(cf.FACTORS),
        ]
        for name, m in g["models"].items():
            for regime, s in m["by_regime"].items():
                cells = [
                    f"{_f(s[n].get('spread'))} / {_f(s[n].get('real_spread'))}, {_f(s[n].get('w1'))}"
                    for n in cf.FACTORS
                ]
                lines.append(f"| {name} | {regime} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict):
    """The speed figure: per group and regime, each model's clip speeds as a box beside real's."""
    import matplotlib.pyplot as plt  # optional dependency: only when a plot is drawn

    groups = list(result.get("groups", {}).items())
    fig, axes = plt.subplots(len(REGIMES), max(len(groups), 1), figsize=(4.2 * max(len(groups), 1), 6.5))
    axes = np.array(axes).reshape(len(REGIMES), -1)
    for j, (group, g) in enumerate(groups):
        for i, regime in enumerate(REGIMES):
            ax = axes[i, j]
            names = [n for n in g["speeds"] if g["speeds"][n].get(regime)]
            ax.boxplot([g["speeds"][n][regime] for n in names], showmeans=True)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=35, ha="right", fontsize=7)
            ax.axhspan(*world.SPEED_RANGE, color="0.9", zorder=0)  # the world's speeds
            ax.set_title(f"{group}: {regime}", fontsize=9)
            ax.set_ylabel("speed (px/frame)", fontsize=8)
    return fig
