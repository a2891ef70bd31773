"""The confirmatory study's pre-registered analysis (docs/results/preregistration.md): its endpoints, the
fixed-sequence and Holm-corrected tests over the training seeds 20-24, and the references' own sampling error."""

from __future__ import annotations

from ..shapes import world
from . import stats
from .study_plan import CONTROL
from .study_report import DFD, per_seed

# The confirmatory study's analysis, fixed before its runs (docs/results/preregistration.md): on these
# training seeds to_markdown adds it. (id, what is claimed, run, metric, regime, better, compared with,
# non-inferiority margin or None for superiority.)
PREREGISTERED_SEEDS = (20, 21, 22, 23, 24)
PRIMARY = [  # a fixed sequence: P2 is tested only if P1 held
    (
        "P1",
        "DFD p=0.5 covers more modes than the control",
        DFD,
        "mode_coverage",
        "underspecified",
        "higher",
        CONTROL,
        None,
    ),
    (
        "P2",
        "DFD p=0.5 names all attributes right about as often as the control",
        DFD,
        "all_named_correct",
        "detailed",
        "higher",
        CONTROL,
        0.05,
    ),
]
SECONDARY = [  # one Holm family
    ("S1", "DFD p=0.5 draws modes nearer their frequencies", DFD, "mode_tv", "underspecified", "lower", CONTROL, None),
    ("S2", "DFD p=0.5 keeps the control's fidelity", DFD, "prompt_fidelity", "detailed", "higher", CONTROL, 0.02),
    (
        "S3",
        "DFD p=0.5 saturates less at its modes",
        DFD,
        "saturation_error_matched",
        "underspecified",
        "lower",
        CONTROL,
        None,
    ),
    (
        "S4",
        "DFD p=0.5 saturates less at its modes",
        DFD,
        "saturation_error_matched",
        "detailed",
        "lower",
        CONTROL,
        None,
    ),
    (
        "S5",
        "DFD p=0.5 covers more modes than its own DMD2 start",
        DFD,
        "mode_coverage",
        "underspecified",
        "higher",
        "dmd2",
        None,
    ),
    (
        "S6",
        "the rising schedule is more faithful than constant p=0.5",
        "dfd-p0.5-rise",
        "prompt_fidelity",
        "underspecified",
        "higher",
        DFD,
        None,
    ),
    (
        "S7",
        "the rising schedule keeps p=0.5's modes",
        "dfd-p0.5-rise",
        "mode_coverage",
        "underspecified",
        "higher",
        DFD,
        0.4,
    ),
    (
        "S8",
        "t_min 0.5 is more faithful than p=0.5 always",
        "dfd-tmin0.5",
        "prompt_fidelity",
        "underspecified",
        "higher",
        DFD,
        None,
    ),
    (
        "S9",
        "the rising schedule is more faithful than its average p held constant",
        "dfd-p0.5-rise",
        "prompt_fidelity",
        "underspecified",
        "higher",
        "dfd-p0.25",
        None,
    ),
]


def endpoint_test(
    study: dict, run: str, metric: str, regime: str, better: str, against: str, margin: float | None
) -> dict:
    """One pre-registered test, paired over the seeds both runs have: superiority (one-sided paired t toward
    `better`) or, with a margin, non-inferiority (stats.non_inferiority). p is None when a run is missing."""
    values, other = per_seed(study, run, metric, regime), per_seed(study, against, metric, regime)
    test = "superiority" if margin is None else f"non-inferiority (margin {margin:g})"
    if not values or not other:
        return {"test": test, "p": None, "n": 0, "seeds": [], "text": "-"}
    values, other = {int(k): v for k, v in values.items()}, {int(k): v for k, v in other.items()}
    seeds = sorted(k for k in values if k in other and values[k] is not None and other[k] is not None)
    diffs = [values[k] - other[k] for k in seeds]
    if margin is None:
        interval = stats.t_interval(diffs)
        return {
            "test": test,
            "p": stats.paired_t_p(diffs, better),
            "n": len(seeds),
            "seeds": seeds,
            "mean": interval["mean"],
            "text": stats.interval_text(interval),
        }
    out = stats.non_inferiority(diffs, margin, better)
    side = "lower" if better == "higher" else "upper"
    text = (
        "-"
        if out["mean"] is None
        else f"{out['mean']:+.3f}"
        + (f" (one-sided 95% {side} bound {out['bound']:+.3f})" if out["bound"] is not None else " (sign test)")
    )
    return {"test": test, "p": out["p"], "n": len(seeds), "seeds": seeds, "mean": out["mean"], "text": text}


def confirmatory(study: dict) -> dict:
    """The pre-registered verdicts: PRIMARY in fixed sequence, SECONDARY Holm-adjusted; each held or not."""
    primary, going = [], True
    for key, claim, run, metric, regime, better, against, margin in PRIMARY:
        t = endpoint_test(study, run, metric, regime, better, against, margin)
        tested = going and t["p"] is not None
        held = bool(tested and t["p"] < stats.ALPHA)
        going = held
        primary.append(
            {
                "id": key,
                "claim": claim,
                "run": run,
                "metric": metric,
                "regime": regime,
                "against": against,
                **t,
                "tested": tested,
                "held": held,
            }
        )
    secondary = [
        {
            "id": key,
            "claim": claim,
            "run": run,
            "metric": metric,
            "regime": regime,
            "against": against,
            **endpoint_test(study, run, metric, regime, better, against, margin),
        }
        for key, claim, run, metric, regime, better, against, margin in SECONDARY
    ]
    adjusted = stats.holm({e["id"]: e["p"] for e in secondary})
    for e in secondary:
        e["p_holm"] = adjusted[e["id"]]
        e["held"] = bool(e["p_holm"] is not None and e["p_holm"] < stats.ALPHA)
    return {"primary": primary, "secondary": secondary}


def confirmatory_lines(study: dict) -> list[str]:
    found = confirmatory(study)

    def p_text(p):
        return "-" if p is None else f"{p:.4f}"

    lines = [
        "**Pre-registered analysis** (docs/results/preregistration.md; one-sided tests at 0.05 paired over "
        "the training seeds; primary in fixed sequence, secondary Holm-adjusted; superiority shows the "
        "difference [95% t interval], non-inferiority its one-sided 95% bound against -margin)",
        "",
        "| endpoint | claim | metric | contrast | test | difference | seeds | p | Holm p | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in found["primary"] + found["secondary"]:
        held = "yes" if e["held"] else "no" if e.get("tested", True) and e["p"] is not None else "not tested"
        lines.append(
            f"| {e['id']} | {e['claim']} | {e['metric']} ({e['regime']}) | {e['run']} vs {e['against']} | "
            f"{e['test']} | {e['text']} | {e['n']} | {p_text(e['p'])} | {p_text(e.get('p_holm'))} | "
            f"{held} |"
        )
    return lines + [""]


def reference_intervals(
    references: dict, metrics=("all_named_correct", "prompt_fidelity", "saturation", "mode_coverage", "mode_tv")
) -> dict:
    """Each reference row's mean per regime and metric with its 95% bootstrap interval over prompts and the
    clips of each prompt (stats.bootstrap_mean), from an evaluate result that holds per-prompt rows (the
    study's references.json)."""
    out = {}
    for model, rows in references.get("per_prompt", {}).items():
        for regime in ("detailed", "underspecified"):
            prompts = world.prompt_set(regime)
            for metric in metrics:
                readings = stats.clip_readings(rows, metric, prompts)
                if readings:
                    out.setdefault(model, {}).setdefault(regime, {})[metric] = stats.bootstrap_mean(readings)
    return out
