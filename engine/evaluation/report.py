"""An evaluation's result as people read it: Markdown tables (like the paper's Table 1), a PNG of bar
charts, and the JSON/Markdown/PNG files of `python -m engine evaluate --json/--md/--plot`."""

from __future__ import annotations

import json
from pathlib import Path

from .drift import plot as drift_plot
from .drift import to_markdown as drift_markdown

REGIMES = ("detailed", "underspecified")
SHAPES_COLUMNS = [
    ("prompt_fidelity", "prompt fidelity"),
    ("all_named_correct", "all named correct"),
    ("diversity", "diversity"),
    ("mode_coverage", "mode coverage"),
    ("mode_tv", "mode TV (lower better)"),
    ("saturation_error", "saturation error"),
    ("sharpness_ratio", "sharpness / real"),
    ("flicker", "flicker"),
    ("nfe", "NFE"),
]
# an image-to-video base: how well the clips keep the given first frame
I2V_COLUMNS = [
    ("frame_consistency", "frame's shape, colour, background kept"),
    ("first_frame_psnr", "first frame PSNR (dB)"),
    ("posterior_motions", "motions the exact posterior shows in as many draws"),
]
# any base: a column is shown when some model has a value in it
ANY_COLUMNS = [
    ("adherence", "CLIP adherence"),
    ("saturation", "saturation"),
    ("saturation_spread", "saturation spread"),
    ("saturation_gap", "saturation gap"),
    ("contrast", "contrast"),
    ("contrast_gap", "contrast gap"),
    ("motion", "motion"),
    ("motion_gap", "motion gap"),
    ("sharpness_ratio", "sharpness / real"),
    ("first_frame_psnr", "first frame PSNR (dB)"),  # an image-to-video base sampled from the user's frames
    ("nfe", "NFE"),
    ("seconds_per_video", "s / video"),
]


def _cell(value) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def _table(rows: dict[str, dict], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| model | " + " | ".join(c for _, c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |")
    return lines


def _diversity_columns(rows) -> list[tuple[str, str]]:
    keys = sorted({k for row in rows if row for k in row if k.startswith("diversity_")})
    return [(k, k.replace("_", " ")) for k in keys]


def to_markdown(result: dict) -> str:
    """Shapes world: one table per caption regime present. Any other base: one table of every metric
    some model has."""
    head = f"prompts: `{result['prompts']}`, {result['seeds']} seeds per prompt, base `{result['base']}`"
    lines = [head, ""]
    if result.get("world") == "shapes" or "recognizer_heldout_accuracy" in result:
        for regime in REGIMES:
            entries = {n: m["by_regime"].get(regime) for n, m in result["models"].items()}
            if not any(entries.values()):
                continue
            columns = SHAPES_COLUMNS[:3] + _diversity_columns(entries.values()) + SHAPES_COLUMNS[3:]
            columns += [c for c in I2V_COLUMNS if any((row or {}).get(c[0]) is not None for row in entries.values())]
            rows = {n: {**(row or {}), "nfe": result["models"][n]["nfe"]} for n, row in entries.items()}
            lines += [f"**{regime} captions**", "", *_table(rows, columns), ""]
        if result.get("drift"):
            lines += [drift_markdown(result["drift"])]
        return "\n".join(lines)
    models = result["models"]
    columns = [
        c
        for c in _diversity_columns(models.values()) + ANY_COLUMNS
        if any(m.get(c[0]) is not None for m in models.values())
    ]
    lines += _table(models, columns) + [""]
    lines += [f"- {note}" for note in result.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def plot(result: dict, path: Path) -> Path:
    """Bar charts of the headline metrics per model, one panel per metric."""
    import matplotlib  # optional dependency: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional dependency: only when a plot is drawn

    if result.get("world") == "shapes" or "recognizer_heldout_accuracy" in result:
        keys = [
            ("prompt_fidelity", "prompt fidelity ↑"),
            ("diversity", "diversity ↑"),
            ("mode_tv", "mode TV ↓"),
            ("saturation_error", "saturation error ↓"),
            ("sharpness_ratio", "sharpness / real"),
        ]
    else:
        names = sorted({k for m in result["models"].values() for k in m if k.startswith("diversity_")})
        keys = [(k, k.replace("_", " ") + " ↑") for k in names] + [
            ("adherence", "CLIP adherence ↑"),
            ("saturation_gap", "saturation gap ↓"),
            ("motion", "motion"),
        ]
        keys = [k for k in keys if any(m.get(k[0]) is not None for m in result["models"].values())]
    names = list(result["models"])
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.2 * max(1, len(keys)), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], keys):
        values = [result["models"][n].get(key) or 0.0 for n in names]
        ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG (creating the folder) and free it."""
    import matplotlib.pyplot as plt  # optional dependency: only when a plot is drawn

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(
    result: dict,
    json_path: Path | None,
    md_path: Path | None,
    plot_path: Path | None,
    to_markdown=to_markdown,
    plot=plot,
) -> None:
    """The --json, --md and --plot files of a result (evaluate's own renderers unless others are given)."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(to_markdown(result) + "\n")
    if plot_path:
        plot(result, plot_path)
        if result.get("drift"):  # beside it: the windows' curves
            drift_plot(result["drift"], Path(plot_path).with_name(Path(plot_path).stem + "-drift.png"))
