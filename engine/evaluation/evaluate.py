"""`python -m engine evaluate`: every model measured the same way on the shapes world.

For each model and prompt, L seeds are sampled (the same seeds, hence the same initial noise, for
every model), the recognizer names each clip's factors and embeds it, and metrics.py scores them:
prompt fidelity, mode coverage and total-variation distance to the true mode frequencies, diversity
(paper Eq. 26 in the recognizer's feature space), colour and over-saturation, sharpness, flicker.
`real` is the world itself (clips drawn from p_real(. | prompt)): the reference every model is
compared with.
"""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np

from . import metrics
from ..shapes import world
from ..config.sample import SampleConfig
from ..generation.generate import sample_frames
from .specs import ModelSpec
from ..models.base import load_base_model
from ..shapes.recognizer import Recognizer

REGIMES = ("detailed", "underspecified")


def _clips_for(spec: ModelSpec, model, prompt: str, seeds: list[int]) -> tuple[np.ndarray, float, int]:
    """(clips, seconds per video, NFE per video) for one model and prompt."""
    if spec.kind == "real":
        clips, _ = world.sample_clips(world.parse_caption(prompt), len(seeds), seed=zlib.crc32(prompt.encode()) + seeds[0])
        return clips, 0.0, 0
    cfg = SampleConfig(base=model.source, prompt=prompt, seeds=seeds, steps=spec.steps, guidance=spec.guidance,
                       lora=spec.lora)
    started = time.perf_counter()
    clips, nfe = sample_frames(model, cfg.validate())
    return clips, (time.perf_counter() - started) / len(seeds), nfe


def _score(named: dict, clips: np.ndarray, recognizer: Recognizer, extractors=()) -> dict:
    predicted, features = recognizer.predict(clips)
    acc = metrics.attribute_accuracy(named, predicted)
    return {
        "diversity": metrics.diversity(features),
        # the paper's encoders, when asked for (--features clip:MODEL,dinov2:MODEL)
        **{f"diversity_{x.kind}": metrics.diversity(x.video_features(clips)) for x in extractors},
        "prompt_fidelity": float(np.mean(list(acc.values()))) if acc else None,
        "all_named_correct": metrics.all_named_correct(named, predicted) if named else None,
        "factor_accuracy": acc,
        "mode_tv": metrics.mode_tv(named, predicted),
        "mode_coverage": metrics.mode_coverage(named, predicted),
        **metrics.colour_stats(clips),
        "sharpness": metrics.sharpness(clips),
        "flicker": metrics.flicker(clips),
    }


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def _aggregate(rows: list[dict]) -> dict:
    keys = ("diversity", "prompt_fidelity", "all_named_correct", "mode_tv", "mode_coverage", "saturation",
            "saturation_error", "clipped_fraction", "sharpness", "sharpness_ratio", "flicker")
    extra = sorted({k for r in rows for k in r if k.startswith("diversity_")})
    out = {k: _mean(r.get(k) for r in rows) for k in (*keys, *extra)}
    factor = {}
    for f in world.FACTOR_NAMES:
        factor[f] = _mean(r["factor_accuracy"].get(f) for r in rows)
    out["factor_accuracy"] = factor
    return out


def evaluate(model_texts: list[str], prompts: str, seeds: int, base: str = "shapes-tiny", progress=None,
             data_dir: str | None = None, features: list[str] = ()) -> dict:
    """Measure each model on a prompt set (see world.prompt_set) with `seeds` seeds per prompt.
    `features` adds the paper's diversity with other encoders (clip:MODEL, dinov2:MODEL)."""
    from .features import load_extractor

    extractors = [load_extractor(spec) for spec in features]
    specs = [ModelSpec.parse(t, data_dir) for t in model_texts]
    if "real" not in [s.name for s in specs]:
        specs = [ModelSpec.parse("real")] + specs  # the reference for the relative metrics
    prompt_list = world.prompt_set(prompts)
    if not 2 <= seeds <= 64:
        raise ValueError(f"--seeds must be between 2 and 64 (diversity needs pairs), got {seeds}")
    seed_list = list(range(1, seeds + 1))
    recognizer = Recognizer()
    model = load_base_model(base, device="cpu") if any(s.kind != "real" for s in specs) else None
    per_prompt: dict[str, dict[str, dict]] = {s.name: {} for s in specs}
    timing: dict[str, list] = {s.name: [] for s in specs}
    total, done = len(specs) * len(prompt_list), 0
    for spec in specs:
        for prompt in prompt_list:
            clips, seconds, nfe = _clips_for(spec, model, prompt, seed_list)
            per_prompt[spec.name][prompt] = _score(world.parse_caption(prompt), clips, recognizer, extractors)
            timing[spec.name].append((seconds, nfe))
            done += 1
            if progress:
                progress(done, total)
    for spec in specs:  # relative to real clips of the same prompt
        for prompt, row in per_prompt[spec.name].items():
            real = per_prompt["real"][prompt]
            row["saturation_error"] = abs(row["saturation"] - real["saturation"])
            row["sharpness_ratio"] = row["sharpness"] / max(real["sharpness"], 1e-6)
    result = {
        "prompts": prompts,
        "seeds": seeds,
        "base": base,
        "recognizer_heldout_accuracy": recognizer.meta["heldout_accuracy"],
        "features": ["recognizer", *(x.name for x in extractors)],
        "models": {},
        "per_prompt": per_prompt,
    }
    for spec in specs:
        rows = per_prompt[spec.name]
        entry = _aggregate(list(rows.values()))
        entry["nfe"] = timing[spec.name][0][1]
        entry["seconds_per_video"] = round(float(np.mean([t for t, _ in timing[spec.name]])), 4)
        entry["by_regime"] = {
            regime: _aggregate([rows[p] for p in world.prompt_set(regime) if p in rows])
            for regime in REGIMES
            if any(p in rows for p in world.prompt_set(regime))
        }
        result["models"][spec.name] = entry
    return result


COLUMNS = [
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


def to_markdown(result: dict) -> str:
    """A table like the paper's Table 1, one per caption regime present."""
    lines = [f"prompts: `{result['prompts']}`, {result['seeds']} seeds per prompt, base `{result['base']}`", ""]
    for regime in REGIMES:
        entries = {n: m["by_regime"].get(regime) for n, m in result["models"].items()}
        if not any(entries.values()):
            continue
        extra = sorted({k for row in entries.values() if row for k in row if k.startswith("diversity_")})
        columns = COLUMNS[:3] + [(k, k.replace("_", " ")) for k in extra] + COLUMNS[3:]
        lines += [f"**{regime} captions**", "", "| model | " + " | ".join(c for _, c in columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for name, row in entries.items():
            cells = []
            for key, _ in columns:
                value = result["models"][name]["nfe"] if key == "nfe" else row.get(key)
                cells.append("-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value)))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> Path:
    """Bar charts of the headline metrics per model, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("prompt_fidelity", "prompt fidelity ↑"), ("diversity", "diversity ↑"),
            ("mode_tv", "mode TV ↓"), ("saturation_error", "saturation error ↓"), ("sharpness_ratio", "sharpness / real")]
    names = list(result["models"])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2))
    for ax, (key, title) in zip(axes, keys):
        values = [result["models"][n].get(key) or 0.0 for n in names]
        ax.bar(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG (creating the folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: dict, json_path: Path | None, md_path: Path | None, plot_path: Path | None,
                  to_markdown=to_markdown, plot=plot) -> None:
    """The --json, --md and --plot files of a result (evaluate's own renderers unless others are given)."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(to_markdown(result) + "\n")
    if plot_path:
        plot(result, plot_path)
