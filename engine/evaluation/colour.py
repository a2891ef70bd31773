"""Colour and motion statistics of uint8 clips (N, F, H, W, 3), for any base: what over-saturation and
lost dynamics look like in numbers (docs/evaluation.md gives the formulas).

- saturation: mean of HSV saturation S = (max - min) / max over all pixels; saturation spread: its
  standard deviation. Over-saturated students push the mean up and the spread down.
- contrast: RMS contrast of a frame, the standard deviation of its luminance (Rec. 601 weights, 0..1),
  averaged over frames; contrast spread: its standard deviation over the frames.
- motion: mean absolute difference between consecutive frames (RGB, 0..1): how much the video moves,
  without an optical-flow model. A static clip scores 0.
- gaps: the absolute difference of a model's statistic from the real clips' (0 is as real).
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
GAP_OF = ("saturation", "saturation_spread", "contrast", "contrast_spread", "motion")


def hsv_saturation(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    return np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)


def _per_frame_contrast(clips: np.ndarray) -> np.ndarray:
    lum = (clips.astype(np.float32) / 255.0) @ LUMA  # (N, F, H, W)
    return lum.reshape(*lum.shape[:2], -1).std(-1)


def motion(clips: np.ndarray) -> float:
    """Mean absolute difference of consecutive frames, 0..1 (0 for single-frame clips)."""
    if clips.shape[1] < 2:
        return 0.0
    total, count = 0.0, 0
    for clip in clips:  # one clip at a time: a float copy of a whole batch of Wan clips is gigabytes
        x = clip.astype(np.float32) / 255.0
        total += float(np.abs(np.diff(x, axis=0)).sum())
        count += x[1:].size
    return total / count


def colour_motion(clips: np.ndarray) -> dict[str, float]:
    """Saturation, contrast (each with its spread) and motion of a set of clips."""
    saturation = np.concatenate([hsv_saturation(clip).ravel() for clip in clips])
    contrast = _per_frame_contrast(clips)
    return {
        "saturation": float(saturation.mean()),
        "saturation_spread": float(saturation.std()),
        "contrast": float(contrast.mean()),
        "contrast_spread": float(contrast.std()),
        "motion": motion(clips),
    }


def gaps(row: dict, real: dict) -> dict[str, float]:
    """{statistic}_gap: |model - real| for each colour and motion statistic both have."""
    return {f"{k}_gap": abs(row[k] - real[k]) for k in GAP_OF if row.get(k) is not None and real.get(k) is not None}
