"""The study's Markdown tables and its plot: what `study` and `study --from-records` write."""

from __future__ import annotations

from . import stats
from .confirmatory import confirmatory_lines, preregistration_of
from .report import save_figure
from .study_report import COLUMNS, I2V_COLUMNS, TRAINING_CFG_TEACHER, claims, dominance


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
        lines += [
            f"**{regime} prompts**",
            "",
            "| model | CFG | NFE | seeds | " + " | ".join(c for _, c in columns) + " | validity gap ‖x_real − G‖² |",
            "|---" * (len(columns) + 5) + "|",
        ]
        for name, entry in study["models"].items():
            row = entry["by_regime"].get(regime)
            if row is None:
                continue
            cfg, nfe = _how_sampled(entry)
            cells = [_cell(row.get(k)) for k, _ in columns]
            lines.append(
                f"| {name} | {cfg} | {nfe} | {entry.get('seeds') or '-'} | "
                + " | ".join(cells)
                + f" | {_cell(entry.get('real_gap'))} |"
            )
        lines.append("")
    return lines


def to_markdown(study: dict) -> str:
    """The tables, the claims with their intervals, and the variants against the control on every axis."""
    seeds = ", ".join(str(s) for s in study["training_seeds"])
    lines = [
        f"Mean ± std over training seeds {seeds} (a run's seeds are in its row; references have none). "
        "Sharpness and saturation are judged against `real-decoded` (the world's clips through the "
        "autoencoder) and against the world itself (256 real clips per prompt; per clip, real clips of "
        "the mode the recognizer read).",
        "",
        *_tables(study),
    ]
    found = claims(study)
    if found:
        lines += [
            "**Claims** (difference [95% paired t interval over training seeds]; resolved when the interval "
            "excludes 0; a difference that is the same on every seed has no interval, and the exact sign test "
            "decides: resolved from 6 seeds on)",
            "",
            "| claim | metric | difference | seeds | verdict |",
            "|---|---|---|---|---|",
        ]
        for c in found:
            where = f"{c['metric']} ({c['regime']})" if c["regime"] else c["metric"]
            lines.append(
                f"| {c['claim']} | {where} vs {c['against']} | {stats.interval_text(c['difference'])} | "
                f"{c['difference'].get('n', 0)} | {c['verdict']} |"
            )
        lines.append("")
    won = dominance(study)
    if won:
        lines += [
            "**Each variant against the fair control on every axis** (modes against DFD p=0.5; fidelity, "
            "saturation and sharpness against the control)",
            "",
            "| variant | no resolved loss | not worse by the mean | worse (resolved) | not measured |",
            "|---|---|---|---|---|",
        ]
        for name, d in won.items():
            worse = [axis for axis, a in d["axes"].items() if a["verdict"] == "worse"]
            lines.append(
                f"| {name} | {'yes' if d['no_resolved_loss'] else 'no'} | "
                f"{'yes' if d['not_worse_by_mean'] else 'no'} | {', '.join(worse) or '-'} | "
                f"{', '.join(d['unmeasured']) or '-'} |"
            )
        lines.append("")
    plan = preregistration_of(study)
    if plan is not None:
        lines += confirmatory_lines(study, plan)
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
        ax.errorbar(
            x["mean"],
            y["mean"],
            xerr=x.get("std") or 0.0,
            yerr=y.get("std") or 0.0,
            fmt="o",
            ms=4,
            capsize=2,
            color=_colour(i),
        )
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

    keys = [
        ("diversity", "diversity ↑"),
        ("prompt_fidelity", "prompt fidelity ↑"),
        ("mode_tv", "mode TV ↓"),
        ("saturation_error_matched", "saturation error at modes ↓"),
        ("sharpness_vs_decoded", "sharpness / decoded real"),
    ]
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
            ax.bar(
                range(len(names)),
                [s.get("mean") or 0.0 for s in cells],
                yerr=[s.get("std") or 0.0 for s in cells],
                capsize=2,
                color=[_colour(i) for i in range(len(names))],
            )
            ax.set_xticks(range(len(names)), names, rotation=55, ha="right", fontsize=7)
            ax.set_title(f"{title} ({regime})", fontsize=9)
    return save_figure(fig, path)
