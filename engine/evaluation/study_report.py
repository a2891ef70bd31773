"""The training-seed study's Markdown and figure: mean +- std tables per caption regime (every row with the
CFG and NFE it sampled with), each claim with its paired 95% interval and whether it is resolved, and for
each variant whether it beats the fair control on every axis (stats.py has the interval)."""

from __future__ import annotations

from ..shapes import world
from . import stats
from .study_plan import CONTROL
from .report import save_figure

DFD = "dfd-p0.5"
TRAINING_CFG_TEACHER = "teacher@50:cfg=3"  # the teacher at the CFG the students were distilled from
# (what is claimed, the run, the metric, its regime (None: per run), which way is better, compared with)
CLAIMS = [
    ("DFD p=0.5 covers more modes than the control (underspecified)", DFD, "mode_coverage", "underspecified", "higher", CONTROL),
    ("DFD p=0.5 draws the modes closer to their true frequencies (mode TV)", DFD, "mode_tv", "underspecified", "lower", CONTROL),
    ("DFD p=0.5 is more diverse (underspecified)", DFD, "diversity", "underspecified", "higher", CONTROL),
    ("DFD p=0.5 costs fidelity on underspecified prompts", DFD, "prompt_fidelity", "underspecified", "higher", CONTROL),
    ("DFD p=0.5 costs fidelity on detailed prompts", DFD, "prompt_fidelity", "detailed", "higher", CONTROL),
    ("DFD p=0.5 draws all named attributes right as often (detailed)", DFD, "all_named_correct", "detailed", "higher", CONTROL),
    ("DFD p=0.5 is nearer decoded real sharpness (detailed)", DFD, "sharpness_deviation", "detailed", "lower", CONTROL),
    ("DFD p=0.5 is nearer decoded real sharpness (underspecified)", DFD, "sharpness_deviation", "underspecified", "lower", CONTROL),
    ("DFD p=0.5 saturates less at its modes (underspecified)", DFD, "saturation_error_matched", "underspecified", "lower", CONTROL),
    ("DFD p=0.5 saturates less (detailed)", DFD, "saturation_error_matched", "detailed", "lower", CONTROL),
    ("DFD p=0.5 keeps the student nearer its real clips (validity gap)", DFD, "real_gap", None, "lower", CONTROL),
    ("More training alone recovers modes (control against DMD2)", CONTROL, "mode_coverage", "underspecified", "higher", "dmd2"),
    ("DFD p=0.5 beats the 4-NFE teacher with CFG on fidelity (detailed)", DFD, "prompt_fidelity", "detailed", "higher", "teacher@2:cfg=3"),
    ("DFD p=0.5 beats the 4-NFE teacher without CFG on fidelity (detailed)", DFD, "prompt_fidelity", "detailed", "higher", "teacher@4:cfg=1"),
    ("DFD p=0.5 covers as many modes as the 4-NFE teacher with CFG", DFD, "mode_coverage", "underspecified", "higher", "teacher@2:cfg=3"),
    ("DFD p=0.5 reaches the training-CFG teacher's fidelity (detailed)", DFD, "prompt_fidelity", "detailed", "higher", TRAINING_CFG_TEACHER),
]
# The axes on which a variant must not lose to beat the control outright (issue: "Pareto-dominates"):
# modes as DFD p=0.5 does, fidelity as the control does, saturation and sharpness against decoded real.
AXES = [("mode_coverage", "underspecified", "higher", DFD), ("mode_tv", "underspecified", "lower", DFD),
        ("prompt_fidelity", "detailed", "higher", CONTROL), ("prompt_fidelity", "underspecified", "higher", CONTROL),
        ("all_named_correct", "detailed", "higher", CONTROL), ("saturation_error_matched", "detailed", "lower", CONTROL),
        ("saturation_error_matched", "underspecified", "lower", CONTROL),
        ("sharpness_deviation", "detailed", "lower", CONTROL), ("sharpness_deviation", "underspecified", "lower", CONTROL)]
COLUMNS = [("prompt_fidelity", "prompt fidelity ↑"), ("all_named_correct", "all named correct ↑"),
           ("diversity", "diversity ↑"), ("mode_coverage", "modes covered ↑"), ("mode_tv", "mode TV ↓"),
           ("saturation_error_matched", "saturation error at its modes ↓"),
           ("saturation_error_population", "saturation error vs 256 real ↓"),
           ("sharpness_vs_decoded", "sharpness / decoded real")]
# an image-to-video study's (its rows have them): does the video start on the frame and keep its object
I2V_COLUMNS = [("frame_consistency", "frame's object kept ↑"), ("first_frame_psnr", "first frame PSNR dB ↑")]


def _per_seed(study: dict, name: str, metric: str, regime: str | None) -> dict[int, float] | None:
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
    values = _per_seed(study, name, metric, regime)
    if not values:
        return {"mean": None, "resolved": False, "n": 0, "seeds": []}
    values = {int(s): v for s, v in values.items()}
    other = _per_seed(study, against, metric, regime)
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
        out.append({"claim": text, "run": name, "metric": metric, "regime": regime, "against": against,
                    "difference": diff, "verdict": stats.verdict(diff, better)})
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
            axes[f"{metric} ({regime}) vs {against}"] = {"difference": diff, "verdict": stats.verdict(diff, better),
                                                         "mean_not_worse": diff.get("mean") is not None and (
                                                             diff["mean"] >= 0 if better == "higher" else diff["mean"] <= 0)}
        measured = {k: a for k, a in axes.items() if a["difference"].get("mean") is not None}
        out[name] = {"axes": axes, "no_resolved_loss": all(a["verdict"] != "worse" for a in measured.values()),
                     "not_worse_by_mean": all(a["mean_not_worse"] for a in measured.values()),
                     "unmeasured": sorted(set(axes) - set(measured))}
    return out


# The confirmatory study's analysis, fixed before its runs (docs/results/preregistration.md): on these
# training seeds to_markdown adds it. (id, what is claimed, run, metric, regime, better, compared with,
# non-inferiority margin or None for superiority.)
PREREGISTERED_SEEDS = (20, 21, 22, 23, 24)
PRIMARY = [  # a fixed sequence: P2 is tested only if P1 held
    ("P1", "DFD p=0.5 covers more modes than the control", DFD, "mode_coverage", "underspecified", "higher",
     CONTROL, None),
    ("P2", "DFD p=0.5 names all attributes right about as often as the control", DFD, "all_named_correct",
     "detailed", "higher", CONTROL, 0.05),
]
SECONDARY = [  # one Holm family
    ("S1", "DFD p=0.5 draws modes nearer their frequencies", DFD, "mode_tv", "underspecified", "lower", CONTROL,
     None),
    ("S2", "DFD p=0.5 keeps the control's fidelity", DFD, "prompt_fidelity", "detailed", "higher", CONTROL, 0.02),
    ("S3", "DFD p=0.5 saturates less at its modes", DFD, "saturation_error_matched", "underspecified", "lower",
     CONTROL, None),
    ("S4", "DFD p=0.5 saturates less at its modes", DFD, "saturation_error_matched", "detailed", "lower", CONTROL,
     None),
    ("S5", "DFD p=0.5 covers more modes than its own DMD2 start", DFD, "mode_coverage", "underspecified",
     "higher", "dmd2", None),
    ("S6", "the rising schedule is more faithful than constant p=0.5", "dfd-p0.5-rise", "prompt_fidelity",
     "underspecified", "higher", DFD, None),
    ("S7", "the rising schedule keeps p=0.5's modes", "dfd-p0.5-rise", "mode_coverage", "underspecified",
     "higher", DFD, 0.4),
    ("S8", "t_min 0.5 is more faithful than p=0.5 always", "dfd-tmin0.5", "prompt_fidelity", "underspecified",
     "higher", DFD, None),
    ("S9", "the rising schedule is more faithful than its average p held constant", "dfd-p0.5-rise",
     "prompt_fidelity", "underspecified", "higher", "dfd-p0.25", None),
]


def endpoint_test(study: dict, run: str, metric: str, regime: str, better: str, against: str,
                  margin: float | None) -> dict:
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
        return {"test": test, "p": stats.paired_t_p(diffs, better), "n": len(seeds), "seeds": seeds,
                "mean": interval["mean"], "text": stats.interval_text(interval)}
    out = stats.non_inferiority(diffs, margin, better)
    side = "lower" if better == "higher" else "upper"
    text = "-" if out["mean"] is None else f"{out['mean']:+.3f}" + (
        f" (one-sided 95% {side} bound {out['bound']:+.3f})" if out["bound"] is not None else " (sign test)")
    return {"test": test, "p": out["p"], "n": len(seeds), "seeds": seeds, "mean": out["mean"], "text": text}


def confirmatory(study: dict) -> dict:
    """The pre-registered verdicts: PRIMARY in fixed sequence, SECONDARY Holm-adjusted; each held or not."""
    primary, going = [], True
    for key, claim, run, metric, regime, better, against, margin in PRIMARY:
        t = endpoint_test(study, run, metric, regime, better, against, margin)
        tested = going and t["p"] is not None
        held = bool(tested and t["p"] < stats.ALPHA)
        going = held
        primary.append({"id": key, "claim": claim, "run": run, "metric": metric, "regime": regime,
                        "against": against, **t, "tested": tested, "held": held})
    secondary = [{"id": key, "claim": claim, "run": run, "metric": metric, "regime": regime, "against": against,
                  **endpoint_test(study, run, metric, regime, better, against, margin)}
                 for key, claim, run, metric, regime, better, against, margin in SECONDARY]
    adjusted = stats.holm({e["id"]: e["p"] for e in secondary})
    for e in secondary:
        e["p_holm"] = adjusted[e["id"]]
        e["held"] = bool(e["p_holm"] is not None and e["p_holm"] < stats.ALPHA)
    return {"primary": primary, "secondary": secondary}


def _confirmatory_lines(study: dict) -> list[str]:
    found = confirmatory(study)

    def p_text(p):
        return "-" if p is None else f"{p:.4f}"

    lines = ["**Pre-registered analysis** (docs/results/preregistration.md; one-sided tests at 0.05 paired over "
             "the training seeds; primary in fixed sequence, secondary Holm-adjusted; superiority shows the "
             "difference [95% t interval], non-inferiority its one-sided 95% bound against -margin)", "",
             "| endpoint | claim | metric | contrast | test | difference | seeds | p | Holm p | held |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in found["primary"] + found["secondary"]:
        held = "yes" if e["held"] else "no" if e.get("tested", True) and e["p"] is not None else "not tested"
        lines.append(f"| {e['id']} | {e['claim']} | {e['metric']} ({e['regime']}) | {e['run']} vs {e['against']} | "
                     f"{e['test']} | {e['text']} | {e['n']} | {p_text(e['p'])} | {p_text(e.get('p_holm'))} | "
                     f"{held} |")
    return lines + [""]


def reference_intervals(references: dict, metrics=("all_named_correct", "prompt_fidelity", "saturation",
                                                   "mode_coverage", "mode_tv")) -> dict:
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


def _cell(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.3f}" if not stat.get("std") else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def _how_sampled(entry: dict) -> tuple[str, str]:
    nfe = "-" if entry.get("nfe") in (None, 0) else str(entry["nfe"])
    if entry.get("cfg") is not None:
        return f"{entry['cfg']:g}", nfe
    if entry.get("trained_cfg") is not None:
        return f"1 (distilled from {entry['trained_cfg']:g})", nfe
    return "-", nfe


def _tables(study: dict) -> list[str]:
    lines = []
    rows = [r for e in study["models"].values() for r in e["by_regime"].values()]
    columns = COLUMNS + [c for c in I2V_COLUMNS if any((r.get(c[0]) or {}).get("mean") is not None for r in rows)]
    for regime in ("detailed", "underspecified"):
        lines += [f"**{regime} prompts**", "",
                  "| model | CFG | NFE | seeds | " + " | ".join(c for _, c in columns) + " | validity gap ‖x_real − G‖² |",
                  "|---" * (len(columns) + 5) + "|"]
        for name, entry in study["models"].items():
            row = entry["by_regime"].get(regime)
            if row is None:
                continue
            cfg, nfe = _how_sampled(entry)
            cells = [_cell(row.get(k)) for k, _ in columns]
            lines.append(f"| {name} | {cfg} | {nfe} | {entry.get('seeds') or '-'} | " + " | ".join(cells)
                         + f" | {_cell(entry.get('real_gap'))} |")
        lines.append("")
    return lines


def to_markdown(study: dict) -> str:
    """The tables, the claims with their intervals, and the variants against the control on every axis."""
    seeds = ", ".join(str(s) for s in study["training_seeds"])
    lines = [f"Mean ± std over training seeds {seeds} (a run's seeds are in its row; references have none). "
             "Sharpness and saturation are judged against `real-decoded` (the world's clips through the "
             "autoencoder) and against the world itself (256 real clips per prompt; per clip, real clips of "
             "the mode the recognizer read).", "", *_tables(study)]
    found = claims(study)
    if found:
        lines += ["**Claims** (difference [95% paired t interval over training seeds]; resolved when the interval "
                  "excludes 0; a difference that is the same on every seed has no interval, and the exact sign test "
                  "decides: resolved from 6 seeds on)", "", "| claim | metric | difference | seeds | verdict |", "|---|---|---|---|---|"]
        for c in found:
            where = f"{c['metric']} ({c['regime']})" if c["regime"] else c["metric"]
            lines.append(f"| {c['claim']} | {where} vs {c['against']} | {stats.interval_text(c['difference'])} | "
                         f"{c['difference'].get('n', 0)} | {c['verdict']} |")
        lines.append("")
    won = dominance(study)
    if won:
        lines += ["**Each variant against the fair control on every axis** (modes against DFD p=0.5; fidelity, "
                  "saturation and sharpness against the control)", "",
                  "| variant | no resolved loss | not worse by the mean | worse (resolved) | not measured |",
                  "|---|---|---|---|---|"]
        for name, d in won.items():
            worse = [axis for axis, a in d["axes"].items() if a["verdict"] == "worse"]
            lines.append(f"| {name} | {'yes' if d['no_resolved_loss'] else 'no'} | "
                         f"{'yes' if d['not_worse_by_mean'] else 'no'} | {', '.join(worse) or '-'} | "
                         f"{', '.join(d['unmeasured']) or '-'} |")
        lines.append("")
    if tuple(sorted(study.get("training_seeds", ()))) == PREREGISTERED_SEEDS:
        lines += _confirmatory_lines(study)
    return "\n".join(lines)


def _tradeoff(ax, study: dict, names: list[str]) -> bool:
    """Modes covered (underspecified) against all named correct (detailed), mean and std over seeds, of every
    trained model and the teacher at the training CFG: the trade-off every DFD variant moves along (the
    few-step teachers and real clips are far off it, in the bars). False when no model has both."""
    def cell(name, regime, key):
        return study["models"][name]["by_regime"].get(regime, {}).get(key) or {}

    drawn = False
    for i, name in enumerate(names):
        x, y = cell(name, "underspecified", "mode_coverage"), cell(name, "detailed", "all_named_correct")
        trained_or_teacher = study["models"][name].get("seeds") or name == TRAINING_CFG_TEACHER
        if not trained_or_teacher or x.get("mean") is None or y.get("mean") is None:
            continue
        ax.errorbar(x["mean"], y["mean"], xerr=x.get("std") or 0.0, yerr=y.get("std") or 0.0, fmt="o", ms=4,
                    capsize=2, color=_colour(i))
        ax.annotate(name, (x["mean"], y["mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        drawn = True
    ax.set_xlabel("modes covered (underspecified) →", fontsize=8)
    ax.set_ylabel("all named correct (detailed) ↑", fontsize=8)
    ax.set_title("the trade-off: modes against fidelity", fontsize=9)
    return drawn


def _colour(i: int):
    """The bars' colour of the i-th model (tab20), so a model keeps its colour in every panel."""
    import matplotlib.pyplot as plt  # optional dependency: only when a plot is drawn

    return plt.get_cmap("tab20")(i % 20)


def plot(study: dict, path):
    """Bars with std error bars: diversity, fidelity, mode TV, saturation error at the modes and sharpness
    against decoded real, one row per regime. The panel whose metric is undefined (mode TV on detailed prompts:
    no free factor to count) shows the modes-against-fidelity trade-off instead, or is left blank."""
    import matplotlib  # optional dependency: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional dependency: only when a plot is drawn

    keys = [("diversity", "diversity ↑"), ("prompt_fidelity", "prompt fidelity ↑"), ("mode_tv", "mode TV ↓"),
            ("saturation_error_matched", "saturation error at modes ↓"), ("sharpness_vs_decoded", "sharpness / decoded real")]
    regimes = ("detailed", "underspecified")
    names = list(study["models"])
    fig, axes = plt.subplots(len(regimes), len(keys), figsize=(3.4 * len(keys), 3.3 * len(regimes)), squeeze=False)
    for r, regime in enumerate(regimes):
        for c, (key, title) in enumerate(keys):
            ax = axes[r][c]
            cells = [study["models"][n]["by_regime"].get(regime, {}).get(key) or {} for n in names]
            if not any(s.get("mean") is not None for s in cells):  # e.g. mode TV: no free factor to count
                if not _tradeoff(ax, study, names):
                    ax.axis("off")
                    ax.set_title(f"{title} ({regime}): not defined", fontsize=9)
                continue
            ax.bar(range(len(names)), [s.get("mean") or 0.0 for s in cells], yerr=[s.get("std") or 0.0 for s in cells],
                   capsize=2, color=[_colour(i) for i in range(len(names))])
            ax.set_xticks(range(len(names)), names, rotation=55, ha="right", fontsize=7)
            ax.set_title(f"{title} ({regime})", fontsize=9)
    return save_figure(fig, path)
