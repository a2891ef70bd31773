"""The real clips an evaluation compares every model with, outside the shapes world: the user's held-out
videos with captions, read as the training data is (engine/datasets/sources.py: sidecar .txt files, a
captions.jsonl or captions.csv), one window per video at the model's frame rate and frame count,
centre-cropped to the model's size, and passed through the model's VAE and back, so that the reference
carries the same decoder's blur and colour shifts as every sample and a gap to it is the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.sources import list_folder
from ..datasets.video_windows import VideoReadError, iter_windows

ROUND_TRIP_BATCH = 1  # Wan's VAE encodes a whole 81-frame clip at once: one at a time bounds the memory


@dataclass
class RealClips:
    clips: np.ndarray  # uint8 (N, F, H, W, 3) at the model's size
    captions: list[str]
    skipped: list[tuple[str, str]]  # (file, reason) for every file of the folder not used


def read_real_clips(
    folder: str | Path, num_frames: int, height: int, width: int, fps: float, limit: int = 64
) -> RealClips:
    """At most `limit` captioned clips of `folder`, one window each. Raises ValueError when none is usable."""
    from ..distill.data import resize_crop  # torch: only when real clips are read

    listing = list_folder(folder)
    clips, captions, skipped = [], [], list(listing.skipped)

    def fit(frame: np.ndarray) -> np.ndarray:
        return resize_crop(frame[None], height, width)[0]

    for clip in listing.clips:
        if len(clips) >= limit:
            break
        try:
            window = next(iter_windows(clip.path, num_frames, fps, max_windows=1, fit=fit), None)
        except VideoReadError as err:
            skipped.append((clip.path.name, str(err)))
            continue
        clips.append(window.frames)
        captions.append(clip.caption)
    if not clips:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped[:3]) or "it holds no video"
        raise ValueError(
            f"no usable real clip in {folder} ({reasons}); the reference needs captioned videos of at "
            f"least {num_frames} frames at {fps:g} fps"
        )
    return RealClips(np.stack(clips), captions, skipped)


def through_decoder(model, clips: np.ndarray) -> np.ndarray:
    """The clips encoded by the model's VAE and decoded again (uint8, same shape)."""
    out = [
        model.decode(model.encode_video(clips[i : i + ROUND_TRIP_BATCH]))
        for i in range(0, len(clips), ROUND_TRIP_BATCH)
    ]
    return np.concatenate(out)
