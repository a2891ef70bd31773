"""Drift along a video longer than the clips a model learned from: a causal student continued past its
training length with a rolling KV cache (`evaluate --num-frames 65`) is read window by window, each window
as long as the world's clips (the recognizer reads windows the way it was trained), consecutive windows
sharing one frame. Per window: saturation and sharpness (colour and detail drift: an autoregressive
student's errors compound over chunks) and prompt fidelity and flicker. The world's objects are drawn so
that a 17-frame path stays in the picture; past that a real object would leave it, so a fidelity drop late
in a long video is partly the world's and is read against the bidirectional teacher's at the same length.
"""

from __future__ import annotations

import numpy as np

from ..shapes import world
from . import metrics

WINDOW = world.NUM_FRAMES
KEYS = ("saturation", "sharpness", "prompt_fidelity", "flicker")


def windows(num_frames: int, window: int = WINDOW) -> list[tuple[int, int]]:
    """[start, end) of each window: 65 frames give (0, 17), (16, 33), (32, 49), (48, 65)."""
    return [(s, s + window) for s in range(0, num_frames - window + 1, window - 1)]


def along(clips: np.ndarray, named: dict[str, str], recognizer) -> list[dict]:
    """Per window of uint8 clips (N, F, H, W, 3): its frames and the KEYS measured on it."""
    out = []
    for start, end in windows(clips.shape[1]):
        part = clips[:, start:end]
        predicted, _ = recognizer.predict(part)
        accuracy = metrics.attribute_accuracy(named, predicted)
        out.append(
            {
                "frames": [start, end],
                "saturation": metrics.colour_stats(part)["saturation"],
                "sharpness": metrics.sharpness(part),
                "prompt_fidelity": float(np.mean(list(accuracy.values()))) if accuracy else None,
                "flicker": metrics.flicker(part),
            }
        )
    return out


def summarize(per_prompt: dict[str, dict[str, dict]]) -> dict[str, list[dict]]:
    """model -> per window the mean over prompts of each KEY (models whose rows have windows)."""
    out = {}
    for name, rows in per_prompt.items():
        with_windows = [r["windows"] for r in rows.values() if r.get("windows")]
        if not with_windows or len(with_windows[0]) < 2:
            continue
        out[name] = []
        for i, first in enumerate(with_windows[0]):
            entry = {"frames": first["frames"]}
            for key in KEYS:
                values = [w[i][key] for w in with_windows if w[i][key] is not None]
                entry[key] = round(float(np.mean(values)), 4) if values else None
            out[name].append(entry)
    return out


def to_markdown(drift: dict[str, list[dict]]) -> str:
    """One table per metric: rows are models, columns the windows' frame ranges."""
    if not drift:
        return ""
    spans = [f"{w['frames'][0]}-{w['frames'][1] - 1}" for w in next(iter(drift.values()))]
    lines = ["**drift along the video** (frames of each window; mean over prompts)", ""]
    for key in KEYS:
        lines += [
            f"{key.replace('_', ' ')}:",
            "",
            "| model | " + " | ".join(spans) + " |",
            "|---" * (len(spans) + 1) + "|",
        ]
        for name, entries in drift.items():
            cells = ["-" if e[key] is None else f"{e[key]:.3f}" for e in entries]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(drift: dict[str, list[dict]], path):
    """Each KEY against the window's middle frame, a line per model."""
    import matplotlib  # optional dependency: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen

    from .report import save_figure  # report builds on this module's table

    fig, axes = plt.subplots(1, len(KEYS), figsize=(3.4 * len(KEYS), 3.2), squeeze=False)
    for ax, key in zip(axes[0], KEYS):
        for i, (name, entries) in enumerate(drift.items()):
            x = [(e["frames"][0] + e["frames"][1] - 1) / 2 for e in entries]
            ax.plot(x, [np.nan if e[key] is None else e[key] for e in entries], marker="o", color=f"C{i}", label=name)
        ax.set_title(key.replace("_", " "), fontsize=10)
        ax.set_xlabel("frame (window middle)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)
