"""Metrics of generated clips on the shapes world, each a small pure function of uint8 clips
(N, F, H, W, 3) and, where needed, the recognizer's predictions. evaluate.py composes them."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

from ..shapes import world


def diversity(features: np.ndarray) -> float:
    """1 - mean pairwise cosine similarity of per-video features (paper Eq. 26, one prompt)."""
    f = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-8)
    n = len(f)
    if n < 2:
        return 0.0
    sims = [float(f[i] @ f[j]) for i, j in itertools.combinations(range(n), 2)]
    return 1.0 - float(np.mean(sims))


def attribute_accuracy(named: dict[str, str], predicted: list[dict[str, str]]) -> dict[str, float]:
    """Per named factor: the fraction of clips whose predicted value is the named one."""
    return {factor: float(np.mean([p[factor] == value for p in predicted])) for factor, value in named.items()}


def all_named_correct(named: dict[str, str], predicted: list[dict[str, str]]) -> float:
    """Fraction of clips that show every named attribute."""
    return float(np.mean([all(p[f] == v for f, v in named.items()) for p in predicted]))


def mode_tv(
    named: dict[str, str], predicted: list[dict[str, str]], truth_of: dict[str, dict[str, float]] | None = None
) -> float | None:
    """Mean over the free factors of the total-variation distance between the predicted value
    frequencies and the world's true ones (None when the caption names every factor). truth_of: a free
    factor's true frequencies where they are not its marginal (image-to-video: the motion given the frame)."""
    free = [f for f in world.FACTOR_NAMES if f not in named]
    if not free:
        return None
    tvs = []
    for factor in free:
        counts = Counter(p[factor] for p in predicted)
        truth = (truth_of or {}).get(factor) or world.mode_frequencies(named, factor)
        tvs.append(0.5 * sum(abs(counts[v] / len(predicted) - truth[v]) for v in truth))
    return float(np.mean(tvs))


def mode_coverage(named: dict[str, str], predicted: list[dict[str, str]]) -> int:
    """How many distinct joint modes (values of the free factors) appear among the clips."""
    free = [f for f in world.FACTOR_NAMES if f not in named]
    return len({tuple(p[f] for f in free) for p in predicted})


def _hsv_saturation(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    return np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)


def colour_stats(clips: np.ndarray) -> dict[str, float]:
    """Mean HSV saturation and the fraction of clipped channel values (0 or 255)."""
    return {
        "saturation": float(_hsv_saturation(clips).mean()),
        "clipped_fraction": float(((clips == 0) | (clips == 255)).mean()),
    }


def sharpness(clips: np.ndarray) -> float:
    """Root-mean-square luminance gradient. Squared, not absolute: the total variation of an edge does not
    change when it is blurred, its gradient energy does (a step spread over k pixels has 1/k of it)."""
    lum = clips.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gx = np.square(np.diff(lum, axis=-1)).mean()
    gy = np.square(np.diff(lum, axis=-2)).mean()
    return float(np.sqrt(gx + gy))


def flicker(clips: np.ndarray) -> float:
    """Mean absolute change of the background between consecutive frames (the world's backgrounds
    are static, so any change there is flicker). Background = pixels far from the clip's object."""
    x = clips.astype(np.float32)
    border = np.concatenate(
        [x[:, :, :3, :, :].reshape(len(x), x.shape[1], -1, 3), x[:, :, -3:, :, :].reshape(len(x), x.shape[1], -1, 3)],
        axis=2,
    )
    return float(np.abs(np.diff(border, axis=1)).mean())
