"""Real data for distillation: batches of (real clip latents, caption embeddings) drawn under one
caption each, from the built-in shapes world, from the user's videos (a folder or a data-set config:
engine/distill/folder_data.py, engine/datasets/dataset_config.py) or synthetic latents for benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.sources import DataError
from ..shapes import world

__all__ = ["DataError", "RealBatch", "ShapesData", "SyntheticData", "fit_clip", "load_data", "resize_crop"]


@dataclass
class RealBatch:
    latents: torch.Tensor  # normalized VAE latents of the real clips (B, C, F', H', W')
    cond: torch.Tensor  # their captions' embeddings (B, L, D)
    captions: list[str]


class ShapesData:
    """The built-in world as a data source: pairs (caption from the chosen regime, clip drawn from
    p_real(. | caption)), pre-rendered and encoded once into a pool, like a finite real data set.
    Detailed captions are the DFD paper's regime (narrow conditionals)."""

    def __init__(self, model, regime: str = "detailed", seed: int = 0, pool_size: int = 2048, text_done=None):
        namings = [n for n in world.all_namings() if n]
        if regime == "detailed":
            namings = [n for n in namings if len(n) == len(world.FACTOR_NAMES)]
        elif regime == "underspecified":
            namings = [n for n in namings if len(n) < len(world.FACTOR_NAMES)]
        self.namings = namings
        self.captions = [world.caption(n) for n in namings]
        self.model = model
        self.embeddings = torch.cat(
            [model.encode_prompts(self.captions[i : i + 256]) for i in range(0, len(self.captions), 256)]
        )
        if text_done is not None:  # every caption is encoded: the text encoder may go before the clips
            text_done()
        # Rendering and encoding a batch costs about as much as a tiny model's update, so the pool is
        # made once (a fixed function of the seed) and batches index into it.
        pool_rng = np.random.default_rng(seed + 1)
        self.pool_caption = pool_rng.integers(0, len(namings), size=pool_size)
        # An image-to-video base's clips start as its record says it was trained (world.FRAME_LAWS): the real
        # clips DFD scores and the frames the student starts from follow the teacher's law. "edge", the world's
        # own, draws nothing for it, so every other base's pool is the same clips as ever.
        meta = getattr(model, "meta", None) or {}
        self.frames = world.frame_law_of(meta) or "edge"
        latents = []
        self.pool_factors: list[world.ClipFactors] = []  # what each pooled clip shows, from the world's truth
        for start in range(0, pool_size, 256):
            idx = self.pool_caption[start : start + 256]
            factors = [
                world.draw_factors(pool_rng, namings[i], start=world.draw_start_law(pool_rng, self.frames)) for i in idx
            ]
            self.pool_factors += factors
            clips = np.stack([world.render(f) for f in factors])
            latents.append(model.encode_video(clips))
        self.pool = torch.cat(latents).float()  # real latents stay fp32 whatever the base's dtype
        self.rng = np.random.default_rng(seed)

    def prompt_embeddings(self, captions: list[str]) -> torch.Tensor:
        """The embeddings of some of the world's captions, encoded before the clips."""
        return self.embeddings[[self.captions.index(c) for c in captions]]

    def batch(self, n: int) -> RealBatch:
        idx = self.rng.integers(0, len(self.pool), size=n)
        caption_idx = self.pool_caption[idx]
        return RealBatch(
            latents=self.pool[idx], cond=self.embeddings[caption_idx], captions=[self.captions[i] for i in caption_idx]
        )

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def resize_crop(frames: np.ndarray, height: int, width: int, mode: str = "bilinear") -> np.ndarray:
    """The centre-crop rule: scale uint8 frames (F, H, W, 3) so they just cover height x width (`mode`
    interpolation, antialiased), then cut out the centre."""
    x = torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float()  # a copy: decoded frames are read-only
    scale = max(height / x.shape[2], width / x.shape[3])
    size = (max(height, round(x.shape[2] * scale)), max(width, round(x.shape[3] * scale)))
    x = torch.nn.functional.interpolate(x, size=size, mode=mode, antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    x = x[:, :, top : top + height, left : left + width]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def fit_clip(frames: np.ndarray, num_frames: int, height: int, width: int, mode: str = "bilinear") -> np.ndarray:
    """Evenly sample num_frames of the frames and resize_crop them to (num_frames, height, width, 3).
    Training data is not made this way (it takes windows at the model's fps); the evaluation's
    feature extractor uses it to bring whole clips to its input size."""
    if len(frames) < num_frames:
        raise DataError(f"has {len(frames)} frames, needs at least {num_frames}")
    idx = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    return resize_crop(frames[idx], height, width, mode)


class SyntheticData:
    """Random unit-scale latents at the model's video size under one caption: for speed and memory
    benchmarks of models whose data is not here (the Wan2.1-1.3B config with random weights)."""

    def __init__(self, model, seed: int = 0, pool_size: int = 4, text_done=None):
        self.captions = ["a synthetic clip for benchmarks"]
        shape = model.latent_shape(pool_size, model.num_frames, model.height, model.width)
        self.latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(model.device)
        self.cond = model.encode_prompts(self.captions)
        if text_done is not None:
            text_done()
        self.rng = np.random.default_rng(seed)

    def prompt_embeddings(self, captions: list[str]) -> torch.Tensor:
        return self.cond.expand(len(captions), -1, -1)

    def batch(self, n: int) -> RealBatch:
        idx = self.rng.integers(0, len(self.latents), size=n)
        return RealBatch(latents=self.latents[idx], cond=self.cond.expand(n, -1, -1), captions=self.captions * n)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def load_data(
    spec: str,
    model,
    regime: str = "detailed",
    seed: int = 0,
    progress=None,
    pool_size: int = 2048,
    min_clips: int = 1,
    windows_per_video: int = 1,
    cache_dir: str | None = None,
    workers: int = 0,
    text_done=None,
):
    """'shapes' -> ShapesData; 'synthetic' -> SyntheticData (benchmarks); a folder or a data-set config
    (.yaml/.yml/.toml) -> FolderData, which refuses fewer than min_clips usable windows, takes
    windows_per_video per video (0: all), caches encodings in cache_dir (None: in each folder) and, with
    workers, decodes and reads batches in that many background processes. Each encodes every caption
    first, then calls text_done() (the trainer frees the text encoder there), then encodes the clips;
    `prompt_embeddings(captions)` gives the data's caption embeddings afterwards without the encoder."""
    if spec == "shapes":
        return ShapesData(model, regime=regime, seed=seed, pool_size=pool_size, text_done=text_done)
    if spec == "synthetic":
        return SyntheticData(model, seed=seed, text_done=text_done)
    from .folder_data import FolderData  # folder_data builds on this module's RealBatch

    return FolderData(
        spec,
        model,
        seed=seed,
        progress=progress,
        min_clips=min_clips,
        windows_per_video=windows_per_video,
        cache_dir=cache_dir or None,
        workers=workers,
        text_done=text_done,
    )
