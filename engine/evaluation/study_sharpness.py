"""The study's mode-matched sharpness: a prompt's clips against decoded real clips of the modes they show.

`sharpness_vs_decoded` divides a prompt's sharpness by that of the `real-decoded` clips of the same prompt.
On an underspecified prompt those are 8 clips of whatever modes they happened to draw, and real sharpness
varies about tenfold by mode (a yellow object on a dark background has far more edge energy than a teal one on
teal), so the ratio mixes which modes a model draws into how sharp it draws them. Here each clip's reference is
the sharpness of real clips of the factors the recognizer read in it (all four: one mode), through the base's
autoencoder, as `saturation_error_matched` does for saturation.

Sharpness (metrics.sharpness) is a root-mean-square gradient over all pixels, so a set of equal-sized clips
has sharpness^2 = the mean of its clips' sharpness^2. The decoded real clips of the same modes therefore have
sqrt(mean over the prompt's clips of mode_sharpness(clip's mode)^2), and the prompt's ratio is its recorded
sharpness over that: no per-clip sharpness needs to have been recorded, so older records derive it too.

The terms are derived when the study combines its records, never by an evaluate run, so this module is not in
the study's evaluation fingerprint (study._NOT_EVALUATION).
"""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np

from ..shapes import world
from . import metrics

MODE_CLIPS = 32  # real clips per mode for its decoded sharpness
_SEED_OFFSET = 1_000_003  # the draws of study_references' mode clips: away from any evaluation's seeds
MATCHED = ("sharpness_vs_decoded_matched", "sharpness_deviation_matched")


@cache
def _base(base: str):
    # torch: only the first matched term loads the base's autoencoder; the rest of the study is numpy
    from ..models.base import load_base_model

    return load_base_model(base, device="cpu")


@cache
def _mode_sharpness(base: str, combination: tuple[tuple[str, str], ...], n: int) -> float:
    # torch: the round trip through the base's autoencoder (see _base)
    from .reference import through_decoder

    named = dict(combination)
    clips, _ = world.sample_clips(named, n, seed=zlib.crc32(world.caption(named).encode()) + _SEED_OFFSET)
    return metrics.sharpness(through_decoder(_base(base), clips))


def mode_sharpness(factors: dict[str, str], base: str, n: int = MODE_CLIPS) -> float:
    """Sharpness of n real clips with exactly these four factors, through the base's autoencoder."""
    return _mode_sharpness(base, tuple(sorted(factors.items())), n)


def prompt_terms(row: dict, base: str) -> dict:
    """One prompt's mode-matched sharpness ratio and its deviation from 1 ({} without per-clip factors)."""
    if not row.get("clip_factors") or not row.get("sharpness"):
        return {}
    reference = float(np.sqrt(np.mean([mode_sharpness(f, base) ** 2 for f in row["clip_factors"]])))
    ratio = row["sharpness"] / reference
    return {"sharpness_vs_decoded_matched": ratio, "sharpness_deviation_matched": abs(ratio - 1.0)}


def add_matched_sharpness(result: dict, base: str | None = None) -> dict:
    """Add the MATCHED figures to an evaluate result of a shapes-world base, per prompt and per caption regime
    (mean over its prompts), in place; `base` when the result does not name it (a study's merged seed).
    Returns the result."""
    base = result.get("base") or base
    if not base or not result.get("per_prompt"):
        return result
    for name, rows in result["per_prompt"].items():
        for row in rows.values():
            row.update(prompt_terms(row, base))
        for regime, entry in result["models"][name].get("by_regime", {}).items():
            for key in MATCHED:
                values = [rows[p][key] for p in world.prompt_set(regime) if p in rows and key in rows[p]]
                entry[key] = round(float(np.mean(values)), 4) if values else None
    return result
