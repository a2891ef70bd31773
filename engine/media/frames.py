"""How closely generated clips keep a frame they were given, on uint8 frames as numpy arrays: the
image-to-video check that generate() reports and evaluate scores."""

from __future__ import annotations

import numpy as np


def first_frame_psnr(clips: np.ndarray, frame: np.ndarray) -> float:
    """Mean over clips of the PSNR (dB) of each clip's first frame against the given conditioning frame:
    how closely an image-to-video model starts where it was told to (the autoencoder's round trip bounds it)."""
    diff = clips[:, 0].astype(np.float64) - frame[None].astype(np.float64)
    mse = np.maximum(np.square(diff).reshape(len(clips), -1).mean(1), 1e-10)
    return float(np.mean(10.0 * np.log10(255.0**2 / mse)))
