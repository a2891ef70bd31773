"""References the study measures its students against, beyond the raw `real` clips of an evaluation.

- `real-decoded`: the world's own clips encoded and decoded by the base's autoencoder. Every model's
  sample passes through that decoder, so its sharpness and saturation are judged against this row, not
  against raw pixels (a linear patch-PCA autoencoder blurs and desaturates a little on its own).
- Saturation against the world itself: the 8 real clips of an evaluation are a random draw of colour
  modes, so their mean saturation mixes mode frequency into the saturation error. Here a prompt's
  reference is the mean over 256 real clips (`population_saturation`), and each clip's own reference is
  the mean over real clips of the factors the recognizer read in it (`mode_saturation`): the clip's
  saturation excess is then saturation at its mode, apart from how often the model draws that mode.
"""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np

from ..shapes import world
from . import metrics

POPULATION_CLIPS = 256  # real clips per prompt for its saturation reference
MODE_CLIPS = 64  # real clips per factor combination for a clip's own reference
_SEED_OFFSET = 1_000_003  # away from the evaluation's seeds, so no reference clip is one of its real clips


def round_trip(model, clips: np.ndarray, batch: int = 16) -> np.ndarray:
    """uint8 clips (N, F, H, W, 3) encoded and decoded by the base's autoencoder."""
    return np.concatenate([model.decode(model.encode_video(clips[i : i + batch])) for i in range(0, len(clips), batch)])


def clip_saturation(clips: np.ndarray) -> list[float]:
    """Mean HSV saturation of each clip (the measure evaluate.py averages over a prompt's clips)."""
    return [metrics.colour_stats(clip[None])["saturation"] for clip in clips]


def per_clip(predicted: list[dict[str, str]], clips: np.ndarray) -> dict:
    """What the study needs of each clip to separate saturation from mode frequency: the factors the
    recognizer read and the clip's saturation."""
    return {
        "clip_factors": [dict(p) for p in predicted],
        "clip_saturation": [round(s, 5) for s in clip_saturation(clips)],
    }


@cache
def population_saturation(prompt: str, n: int = POPULATION_CLIPS) -> float:
    """Mean saturation of n real clips of the prompt: the world's expected saturation for it."""
    clips, _ = world.sample_clips(world.parse_caption(prompt), n, seed=zlib.crc32(prompt.encode()) + _SEED_OFFSET)
    return float(np.mean(clip_saturation(clips)))


def continuation_saturation(first: dict, n: int = MODE_CLIPS) -> float:
    """Mean saturation of n real continuations of an image-to-video prompt's first frame (its colour and
    background are the frame's, so this, not the prompt's population, is what its clips should show)."""
    return _continuation_saturation(tuple(sorted(first.items())), n)


@cache
def _continuation_saturation(first: tuple[tuple[str, object], ...], n: int) -> float:
    clips, _ = world.continuations(world.ClipFactors(**dict(first)), n, seed=_SEED_OFFSET)
    return float(np.mean(clip_saturation(clips)))


@cache
def _mode_saturation(combination: tuple[tuple[str, str], ...], n: int) -> float:
    named = dict(combination)
    clips, _ = world.sample_clips(named, n, seed=zlib.crc32(world.caption(named).encode()) + _SEED_OFFSET)
    return float(np.mean(clip_saturation(clips)))


def mode_saturation(factors: dict[str, str], n: int = MODE_CLIPS) -> float:
    """Mean saturation of n real clips with exactly these factors (all four named: one mode)."""
    return _mode_saturation(tuple(sorted(factors.items())), n)


def prompt_terms(prompt: str, row: dict, decoded: dict | None) -> dict:
    """One model's reference-relative figures for one prompt (its evaluate row; the real-decoded row)."""
    expected = (
        continuation_saturation(row["first_frame_of"]) if row.get("first_frame_of") else population_saturation(prompt)
    )
    out = {"saturation_error_population": abs(row["saturation"] - expected)}
    if decoded and decoded.get("sharpness"):
        out["sharpness_vs_decoded"] = row["sharpness"] / decoded["sharpness"]
        out["sharpness_deviation"] = abs(out["sharpness_vs_decoded"] - 1.0)  # artefacts (> 1) and blur (< 1) alike
    if row.get("clip_factors"):
        excess = [s - mode_saturation(f) for f, s in zip(row["clip_factors"], row["clip_saturation"])]
        out["saturation_excess"] = float(np.mean(excess))
        out["saturation_error_matched"] = abs(out["saturation_excess"])
    return out


DERIVED = (
    "sharpness_vs_decoded",
    "sharpness_deviation",
    "saturation_error_population",
    "saturation_excess",
    "saturation_error_matched",
)


def add_reference_terms(result: dict, decoded_rows: dict[str, dict] | None) -> dict:
    """Add the DERIVED figures to an evaluate result, per prompt and per caption regime (mean over its
    prompts), in place; `decoded_rows` are the real-decoded model's per-prompt rows (possibly of another
    evaluation with the same prompts and seeds). Returns the result."""
    for name, rows in result.get("per_prompt", {}).items():
        for prompt, row in rows.items():
            row.update(prompt_terms(prompt, row, (decoded_rows or {}).get(prompt)))
        for regime, entry in result["models"][name].get("by_regime", {}).items():
            prompts = [p for p in world.prompt_set(regime) if p in rows]
            for key in DERIVED:
                values = [rows[p][key] for p in prompts if rows[p].get(key) is not None]
                entry[key] = round(float(np.mean(values)), 4) if values else None
    return result
