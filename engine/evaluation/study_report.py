"""The training-seed study's Markdown and figure: mean +- std tables per caption regime (every row with the
CFG and NFE it sampled with), each claim with its paired 95% interval and whether it is resolved, and for
each variant whether it beats the fair control on every axis (stats.py has the interval)."""

from __future__ import annotations

from . import stats
from .study_plan import CONTROL

DFD = "dfd-p0.5"
TRAINING_CFG_TEACHER = "teacher@50:cfg=3"  # the teacher at the CFG the students were distilled from
# (what is claimed, the run, the metric, its regime (None: per run), which way is better, compared with)
CLAIMS = [
    (
        "DFD p=0.5 covers more modes than the control (underspecified)",
        DFD,
        "mode_coverage",
        "underspecified",
        "higher",
        CONTROL,
    ),
    (
        "DFD p=0.5 draws the modes closer to their true frequencies (mode TV)",
        DFD,
        "mode_tv",
        "underspecified",
        "lower",
        CONTROL,
    ),
    ("DFD p=0.5 is more diverse (underspecified)", DFD, "diversity", "underspecified", "higher", CONTROL),
    ("DFD p=0.5 costs fidelity on underspecified prompts", DFD, "prompt_fidelity", "underspecified", "higher", CONTROL),
    ("DFD p=0.5 costs fidelity on detailed prompts", DFD, "prompt_fidelity", "detailed", "higher", CONTROL),
    (
        "DFD p=0.5 draws all named attributes right as often (detailed)",
        DFD,
        "all_named_correct",
        "detailed",
        "higher",
        CONTROL,
    ),
    ("DFD p=0.5 is nearer decoded real sharpness (detailed)", DFD, "sharpness_deviation", "detailed", "lower", CONTROL),
    (
        "DFD p=0.5 is nearer decoded real sharpness (underspecified)",
        DFD,
        "sharpness_deviation",
        "underspecified",
        "lower",
        CONTROL,
    ),
    (
        "DFD p=0.5 saturates less at its modes (underspecified)",
        DFD,
        "saturation_error_matched",
        "underspecified",
        "lower",
        CONTROL,
    ),
    ("DFD p=0.5 saturates less (detailed)", DFD, "saturation_error_matched", "detailed", "lower", CONTROL),
    ("DFD p=0.5 keeps the student nearer its real clips (validity gap)", DFD, "real_gap", None, "lower", CONTROL),
    (
        "More training alone recovers modes (control against DMD2)",
        CONTROL,
        "mode_coverage",
        "underspecified",
        "higher",
        "dmd2",
    ),
    (
        "DFD p=0.5 beats the 4-NFE teacher with CFG on fidelity (detailed)",
        DFD,
        "prompt_fidelity",
        "detailed",
        "higher",
        "teacher@2:cfg=3",
    ),
    (
        "DFD p=0.5 beats the 4-NFE teacher without CFG on fidelity (detailed)",
        DFD,
        "prompt_fidelity",
        "detailed",
        "higher",
        "teacher@4:cfg=1",
    ),
    (
        "DFD p=0.5 covers as many modes as the 4-NFE teacher with CFG",
        DFD,
        "mode_coverage",
        "underspecified",
        "higher",
        "teacher@2:cfg=3",
    ),
    (
        "DFD p=0.5 reaches the training-CFG teacher's fidelity (detailed)",
        DFD,
        "prompt_fidelity",
        "detailed",
        "higher",
        TRAINING_CFG_TEACHER,
    ),
]
# The axes on which a variant must not lose to beat the control outright (issue: "Pareto-dominates"):
# modes as DFD p=0.5 does, fidelity as the control does, saturation and sharpness against decoded real.
AXES = [
    ("mode_coverage", "underspecified", "higher", DFD),
    ("mode_tv", "underspecified", "lower", DFD),
    ("prompt_fidelity", "detailed", "higher", CONTROL),
    ("prompt_fidelity", "underspecified", "higher", CONTROL),
    ("all_named_correct", "detailed", "higher", CONTROL),
    ("saturation_error_matched", "detailed", "lower", CONTROL),
    ("saturation_error_matched", "underspecified", "lower", CONTROL),
    ("sharpness_deviation", "detailed", "lower", CONTROL),
    ("sharpness_deviation", "underspecified", "lower", CONTROL),
]
COLUMNS = [
    ("prompt_fidelity", "prompt fidelity ↑"),
    ("all_named_correct", "all named correct ↑"),
    ("diversity", "diversity ↑"),
    ("mode_coverage", "modes covered ↑"),
    ("mode_tv", "mode TV ↓"),
    ("saturation_error_matched", "saturation error at its modes ↓"),
    ("saturation_error_population", "saturation error vs 256 real ↓"),
    ("sharpness_vs_decoded", "sharpness / decoded real"),
    ("sharpness_vs_decoded_matched", "sharpness / decoded real at its modes"),
]
# an image-to-video study's (its rows have them): does the video start on the frame and keep its object
I2V_COLUMNS = [("frame_consistency", "frame's object kept ↑"), ("first_frame_psnr", "first frame PSNR dB ↑")]


def per_seed(study: dict, name: str, metric: str, regime: str | None) -> dict[int, float] | None:
    entry = study["models"].get(name)
    if entry is None:
        return None
    if regime is None:
        return entry.get(f"{metric}_by_seed")
    return entry.get("by_seed", {}).get(regime, {}).get(metric)


def _reference_value(study: dict, name: str, metric: str, regime: str | None) -> float | None:
    entry = study["models"].get(name, {})
    return (entry.get("by_regime", {}).get(regime, {}).get(metric) or {}).get("mean") if regime else None


def difference(study: dict, name: str, metric: str, regime: str | None, against: str) -> dict:
    """name minus `against` on one metric: paired over training seeds, or against a reference's one value."""
    values = per_seed(study, name, metric, regime)
    if not values:
        return {"mean": None, "resolved": False, "n": 0, "seeds": []}
    values = {int(s): v for s, v in values.items()}
    other = per_seed(study, against, metric, regime)
    if other:
        return stats.paired_difference(values, {int(s): v for s, v in other.items()})
    return stats.difference_from_value(values, _reference_value(study, against, metric, regime))


def claims(study: dict) -> list[dict]:
    """Every CLAIMS entry whose runs the study has: its difference, interval and verdict."""
    out = []
    for text, name, metric, regime, better, against in CLAIMS:
        if name not in study["models"] or against not in study["models"]:
            continue
        diff = difference(study, name, metric, regime, against)
        out.append(
            {
                "claim": text,
                "run": name,
                "metric": metric,
                "regime": regime,
                "against": against,
                "difference": diff,
                "verdict": stats.verdict(diff, better),
            }
        )
    return out


def dominance(study: dict) -> dict[str, dict]:
    """Per post-training variant: its verdict on each AXES entry and whether it lost on none (resolved)
    and won or tied on all by the mean."""
    out = {}
    for name, entry in study["models"].items():
        if not entry.get("seeds") or name in ("dmd2", CONTROL):
            continue
        axes = {}
        for metric, regime, better, against in AXES:
            if against == name:
                continue
            diff = difference(study, name, metric, regime, against)
            axes[f"{metric} ({regime}) vs {against}"] = {
                "difference": diff,
                "verdict": stats.verdict(diff, better),
                "mean_not_worse": diff.get("mean") is not None
                and (diff["mean"] >= 0 if better == "higher" else diff["mean"] <= 0),
            }
        measured = {k: a for k, a in axes.items() if a["difference"].get("mean") is not None}
        out[name] = {
            "axes": axes,
            "no_resolved_loss": all(a["verdict"] != "worse" for a in measured.values()),
            "not_worse_by_mean": all(a["mean_not_worse"] for a in measured.values()),
            "unmeasured": sorted(set(axes) - set(measured)),
        }
    return out
