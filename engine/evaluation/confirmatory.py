"""The pre-registered analyses of the confirmatory studies: their endpoints, the fixed-sequence and
Holm-corrected tests over their training seeds, and the references' own sampling error.

- Text-to-video (docs/results/preregistration.md): training seeds 20-24 on shapes-tiny.
- Image-to-video on frames that leave motions open (docs/results/preregistration-i2v.md): seeds 30-32 on
  shapes-tiny-ti2v.

A study is analysed by the pre-registration of its training seeds (preregistration_of); an endpoint's regime
is a caption regime or, where the pre-registration names prompts, a tuple of prompts (the mean over them of
each seed's per-prompt values, which the study keeps for study.PROMPT_METRICS).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..shapes import world
from . import stats
from .study_plan import CONTROL
from .study_report import DFD, per_seed

# The confirmatory study's analysis, fixed before its runs (docs/results/preregistration.md): on these
# training seeds to_markdown adds it. (id, what is claimed, run, metric, regime, better, compared with,
# non-inferiority margin or None for superiority.)
PREREGISTERED_SEEDS = (20, 21, 22, 23, 24)
# no price in the caption: an endpoint of both pre-registrations (text-to-video P2, image-to-video S4)
NAMED_AS_OFTEN = (
    "DFD p=0.5 names all attributes right about as often as the control",
    DFD,
    "all_named_correct",
    "detailed",
    "higher",
    CONTROL,
    0.05,
)
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
    ("P2", *NAMED_AS_OFTEN),
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


# The image-to-video study's analysis, fixed before its runs (docs/results/preregistration-i2v.md).
I2V_SEEDS = (30, 31, 32)
# the underspecified prompts whose frame starts in the centre box and whose motion is free: all four motions open
CENTRE_FREE = ("a shape", "a blue shape", "a triangle", "a green square")
PRIMARY_I2V = [
    (
        "P1",
        "DFD p=0.5 draws motions nearer the exact posterior",
        DFD,
        "mode_tv",
        "underspecified",
        "lower",
        CONTROL,
        None,
    )
]
SECONDARY_I2V = [  # one Holm family
    (
        "S1",
        "DFD p=0.5 draws motions nearer the posterior than its DMD2 start",
        DFD,
        "mode_tv",
        "underspecified",
        "lower",
        "dmd2",
        None,
    ),
    (
        "S2",
        "DFD p=0.5 draws motions nearer the posterior from centre frames",
        DFD,
        "mode_tv",
        CENTRE_FREE,
        "lower",
        CONTROL,
        None,
    ),
    (
        "S3",
        "DFD p=0.5 keeps the frame's object as often as the control",
        DFD,
        "frame_consistency",
        "underspecified",
        "higher",
        CONTROL,
        0.05,
    ),
    ("S4", *NAMED_AS_OFTEN),
]


@dataclass(frozen=True)
class Preregistration:
    seeds: tuple[int, ...]
    document: str
    primary: list  # tested in fixed sequence
    secondary: list  # one Holm family
    dmd2_steps: int = 1250  # the registered runs' training steps: the same seeds trained otherwise are exploratory
    post_steps: int = 200


TEXT_TO_VIDEO = Preregistration(PREREGISTERED_SEEDS, "docs/results/preregistration.md", PRIMARY, SECONDARY)
IMAGE_TO_VIDEO = Preregistration(I2V_SEEDS, "docs/results/preregistration-i2v.md", PRIMARY_I2V, SECONDARY_I2V)


def preregistration_of(study: dict) -> Preregistration | None:
    """The pre-registration whose training seeds the study ran with its registered steps, or None (an
    exploratory study: other seeds, or a follow-up on the same seeds trained for other steps)."""
    seeds = tuple(sorted(study.get("training_seeds", ())))
    plan = next((p for p in (TEXT_TO_VIDEO, IMAGE_TO_VIDEO) if p.seeds == seeds), None)
    if plan is None:
        return None
    for name, entry in study.get("models", {}).items():
        steps = entry.get("steps")  # recorded per run by study.rederive; absent in tables made before it was
        if steps is not None and steps != (plan.dmd2_steps if name == "dmd2" else plan.post_steps):
            return None
    return plan


def _per_seed(study: dict, run: str, metric: str, regime) -> dict | None:
    """A run's value per training seed: of a caption regime, or the mean over a tuple of prompts."""
    if isinstance(regime, str) or regime is None:
        return per_seed(study, run, metric, regime)
    by_prompt = study["models"].get(run, {}).get("by_prompt", {}).get(metric)
    if not by_prompt:
        return None
    seeds = sorted({s for p in regime for s in by_prompt.get(p, {})})
    out = {}
    for s in seeds:
        values = [by_prompt.get(p, {}).get(s) for p in regime]
        values = [v for v in values if v is not None]
        out[s] = sum(values) / len(values) if len(values) == len(regime) else None
    return out


def _regime_text(regime) -> str:
    return regime if isinstance(regime, str) else f"{len(regime)} prompts: " + ", ".join(regime)


def endpoint_test(study: dict, run: str, metric: str, regime, better: str, against: str, margin: float | None) -> dict:
    """One pre-registered test, paired over the seeds both runs have: superiority (one-sided paired t toward
    `better`) or, with a margin, non-inferiority (stats.non_inferiority). p is None when a run is missing."""
    values, other = _per_seed(study, run, metric, regime), _per_seed(study, against, metric, regime)
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


def confirmatory(study: dict, plan: Preregistration = TEXT_TO_VIDEO) -> dict:
    """The pre-registered verdicts: the primary endpoints in fixed sequence, the secondary Holm-adjusted;
    each held or not."""
    primary, going = [], True
    for key, claim, run, metric, regime, better, against, margin in plan.primary:
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
        for key, claim, run, metric, regime, better, against, margin in plan.secondary
    ]
    adjusted = stats.holm({e["id"]: e["p"] for e in secondary})
    for e in secondary:
        e["p_holm"] = adjusted[e["id"]]
        e["held"] = bool(e["p_holm"] is not None and e["p_holm"] < stats.ALPHA)
    return {"primary": primary, "secondary": secondary}


def confirmatory_lines(study: dict, plan: Preregistration = TEXT_TO_VIDEO) -> list[str]:
    found = confirmatory(study, plan)

    def p_text(p):
        return "-" if p is None else f"{p:.4f}"

    lines = [
        f"**Pre-registered analysis** ({plan.document}; one-sided tests at 0.05 paired over "
        "the training seeds; primary in fixed sequence, secondary Holm-adjusted; superiority shows the "
        "difference [95% t interval], non-inferiority its one-sided 95% bound against -margin)",
        "",
        "| endpoint | claim | metric | contrast | test | difference | seeds | p | Holm p | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in found["primary"] + found["secondary"]:
        held = "yes" if e["held"] else "no" if e.get("tested", True) and e["p"] is not None else "not tested"
        lines.append(
            f"| {e['id']} | {e['claim']} | {e['metric']} ({_regime_text(e['regime'])}) | "
            f"{e['run']} vs {e['against']} | "
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
