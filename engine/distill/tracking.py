"""Experiment trackers users already run (tensorboard, trackio, wandb), through accelerate's trackers: the
loss terms of every step and the preview videos, beside metrics.jsonl (always written; the Jobs tab plots
it). Off unless asked (`log_with`); a tracker whose package is missing is refused in one line before the
base model loads."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np

from ..config.fields import ConfigError

PROJECT = "dfd-distill"  # the run's folder under the output folder (tensorboard) or project name (trackio, wandb)


def tracker_of(log_with: str) -> str | None:
    """accelerate's name for the tracker asked for (None for none); ConfigError when its package is missing."""
    if log_with in (None, "none"):
        return None
    if importlib.util.find_spec(log_with) is None:
        raise ConfigError(
            "log_with",
            f"{{log_with}} {log_with}: the {log_with} package is not installed; "
            f"pip install {log_with}, or log with none",
        )
    return log_with


class Tracking:
    """The run's tracker, if any (only the main process logs; accelerate sees to that)."""

    def __init__(self, accelerator, log_with: str):
        self.accelerator = accelerator
        self.name = tracker_of(log_with)

    def start(self, config: dict) -> None:
        if self.name:
            # Trackers' hyperparameter tables take scalars: lists (t_list, betas) go as text.
            flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.items()}
            self.accelerator.init_trackers(PROJECT, config=flat)

    def log(self, terms: dict[str, float], step: int) -> None:
        if self.name:
            self.accelerator.log(terms, step=step)

    def video(self, tag: str, frames: np.ndarray, path: Path, fps: int, step: int) -> None:
        """One preview clip, (frames, height, width, 3) uint8, also written as the mp4 at `path`."""
        if not self.name or not self.accelerator.is_main_process:
            return
        if self.name == "tensorboard":
            _tensorboard_gif(self.accelerator.get_tracker("tensorboard", unwrap=True), tag, frames, fps, step)
        elif self.name == "wandb":
            import wandb  # optional dependency: the tracker asked for

            self.accelerator.log({tag: wandb.Video(str(path), format="mp4")}, step=step)
        elif self.name == "trackio":
            import trackio  # optional dependency: the tracker asked for

            self.accelerator.log({tag: trackio.Video(str(path))}, step=step)


def _tensorboard_gif(writer, tag: str, frames: np.ndarray, fps: int, step: int) -> None:
    """An animated GIF in tensorboard's Images tab (what SummaryWriter.add_video writes, without its moviepy)."""
    from PIL import Image  # optional dependency: tensorboard's GIFs
    from tensorboard.compat.proto.summary_pb2 import Summary

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    height, width = frames.shape[1:3]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=buffer.getvalue())
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
