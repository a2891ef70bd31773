"""The continuous factors over a study's training seeds: each seed's students (a `python -m engine study` run
folder, `SEED_DIR/VARIANT` per run) measured by continuous_report.measure, and every variant's figure and every
contrast between variants paired over the seeds, with 95% t intervals and Holm-adjusted p-values per table.

The shipped students are one training seed per method, so their continuous spreads compare prompts, not
training runs; this is the seed-paired version (docs/results.md, "Continuous factors over training seeds").
"""

from __future__ import annotations

from pathlib import Path

from . import continuous_factors as cf
from . import stats
from .continuous_report import REGIMES

STATISTICS = {"spread": "per-prompt spread (std)", "w1": "Wasserstein-1 distance to real"}
LORA_FILE = "pytorch_lora_weights.safetensors"
# the motion table's columns: (kind of caption, continuous_report.motion_summary's key)
MOTION_COLUMNS = {
    "net speed, motion named": ("motion named", "speed"),
    "net speed, motion free": ("motion free", "speed"),
    "path speed, motion free": ("motion free", "path_speed"),
    "straightness, motion free": ("motion free", "straightness"),
    "still, motion free": ("motion free", "still"),
}


def study_models(runs_dir: str | Path, seeds: list[int], variants: list[str]) -> dict[str, dict[int, str]]:
    """variant -> {seed: LoRA folder} of a study's run folder; every folder must hold a trained student."""
    runs_dir = Path(runs_dir)
    layout, missing = {}, []
    for variant in variants:
        layout[variant] = {}
        for seed in seeds:
            folder = runs_dir / f"seed{seed}" / variant
            if not (folder / LORA_FILE).is_file():
                missing.append(str(folder))
            layout[variant][seed] = str(folder)
    if missing:
        raise ValueError(
            f"no {LORA_FILE} in {', '.join(missing)}: give the folder `python -m engine study --out` wrote "
            "(it keeps seedN/VARIANT per run), and seeds and variants it ran"
        )
    return layout


def relabel(group: dict, layout: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
    """Name the group's models "seed20/dmd2" instead of their folders (in place); the layout by those names."""
    names = {folder: f"seed{seed}/{variant}" for variant, runs in layout.items() for seed, folder in runs.items()}
    for key in ("models", "speeds", "speed_summary"):
        group[key] = {names.get(name, name): value for name, value in group[key].items()}
    return {variant: {seed: names[folder] for seed, folder in runs.items()} for variant, runs in layout.items()}


def _value(group: dict, model: str, regime: str, factor: str, statistic: str) -> float | None:
    return group["models"][model]["by_regime"].get(regime, {}).get(factor, {}).get(statistic)


def seed_paired(group: dict, layout: dict[str, dict[int, str]], contrasts: list[tuple[str, str]]) -> dict:
    """Per regime and statistic, each variant's mean over seeds (95% t interval) per factor, and each contrast
    (variant minus comparator, paired over seeds) with its two-sided paired-t p-value, Holm-adjusted over the
    table's contrasts (factors x contrasts); and the same for how the clips move (MOTION_COLUMNS)."""
    out = {"seeds": sorted(next(iter(layout.values()))), "contrasts": [list(c) for c in contrasts], "tables": {}}

    def table(read, keys: list[str]) -> dict:
        """read(model, key) -> value, for each of the table's columns (keys)."""
        per_variant = {
            variant: {k: stats.t_interval([read(models[s], k) for s in sorted(models)]) for k in keys}
            for variant, models in layout.items()
        }
        diffs = {}
        for a, b in contrasts:
            for k in keys:
                d = stats.paired_difference(
                    {s: read(m, k) for s, m in layout[a].items()}, {s: read(m, k) for s, m in layout[b].items()}
                )
                d["p"] = stats.paired_t_p(
                    [read(layout[a][s], k) - read(layout[b][s], k) for s in d["seeds"]]  # the seeds both have
                )
                diffs[f"{a} - {b}|{k}"] = d
        adjusted = stats.holm({name: d["p"] for name, d in diffs.items()})
        for name, d in diffs.items():
            d["p_holm"] = adjusted[name]
        return {"variants": per_variant, "contrasts": diffs}

    for regime in REGIMES:
        if not any(regime in group["models"][m]["by_regime"] for m in layout[next(iter(layout))].values()):
            continue
        for statistic in STATISTICS:

            def read(model, factor, regime=regime, statistic=statistic):
                return _value(group, model, regime, factor, statistic)

            out["tables"][f"{regime}|{statistic}"] = table(read, list(cf.FACTORS))

    def motion(model, column):
        kind, key = MOTION_COLUMNS[column]
        return group["models"][model]["motion"].get(kind, {}).get(key)

    out["tables"]["motion"] = table(motion, list(MOTION_COLUMNS))
    out["real_motion"] = {c: group["real_motion"].get(k, {}).get(key) for c, (k, key) in MOTION_COLUMNS.items()}
    return out


def _level(d: dict, digits: int) -> str:
    """'2.448 [2.235, 2.662]': a variant's mean over seeds and its interval."""
    if d.get("mean") is None:
        return "-"
    interval = f" [{d['low']:.{digits}f}, {d['high']:.{digits}f}]" if d.get("low") is not None else ""
    return f"{d['mean']:.{digits}f}{interval}"


def to_markdown(study: dict, digits: int = 3) -> str:
    """Per table: a row per variant (mean [95% t interval] over seeds), then a row per contrast with the
    Holm-adjusted p-value of each column beneath its interval."""
    seeds = study["seeds"]
    lines = [
        f"Over training seeds {', '.join(map(str, seeds))} ({len(seeds)}): mean [95% t interval]; contrasts paired "
        "over the seeds, p two-sided (paired t), Holm-adjusted within each table.",
        "",
    ]
    for name, t in study["tables"].items():
        if name == "motion":
            title = "How the clips move (speeds in px/frame; still: share of clips); real: " + ", ".join(
                f"{k} {v:.3f}" for k, v in study["real_motion"].items() if v is not None
            )
        else:
            regime, statistic = name.split("|")
            title = f"{STATISTICS[statistic]}, {regime} prompts, mean over prompts"
        keys = list(next(iter(t["variants"].values())))
        lines += [f"**{title}**", "", "| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for variant, row in t["variants"].items():
            lines.append(f"| {variant} | " + " | ".join(_level(row[k], digits) for k in keys) + " |")
        for a, b in study["contrasts"]:
            cells = []
            for k in keys:
                d = t["contrasts"][f"{a} - {b}|{k}"]
                p = d.get("p_holm")
                cells.append(stats.interval_text(d, digits) + ("" if p is None else f", p {p:.3f}"))
            lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
