"""Real data for distillation: batches of (real clip latents, caption embeddings) drawn under one
caption each, from the built-in shapes world or from a folder of the user's videos.

A folder holds videos (.mp4, .webm, .mov, .mkv, .avi) with captions as a sidecar .txt per video, or a
captions.csv (columns file,caption) or captions.jsonl ({"file": ..., "caption": ...}). Clips are
resized (short side), centre-cropped and sampled to the model's frame count; latents and text
embeddings are cached under <folder>/.dfd_cache keyed by file content and model, so a second run
skips the VAE and the text encoder. Unreadable or too-short videos are skipped and reported.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..shapes import world

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")


class DataError(ValueError):
    """The data cannot be used; the message says why and what to do."""


@dataclass
class RealBatch:
    latents: torch.Tensor  # normalized VAE latents of the real clips (B, C, F', H', W')
    cond: torch.Tensor  # their captions' embeddings (B, L, D)
    captions: list[str]


@dataclass
class FolderReport:
    used: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


class ShapesData:
    """The built-in world as a data source: pairs (caption from the chosen regime, clip drawn from
    p_real(. | caption)), pre-rendered and encoded once into a pool, like a finite real data set.
    Detailed captions are the DFD paper's regime (narrow conditionals)."""

    def __init__(self, model, regime: str = "detailed", seed: int = 0, pool_size: int = 2048):
        namings = [n for n in world.all_namings() if n]
        if regime == "detailed":
            namings = [n for n in namings if len(n) == len(world.FACTOR_NAMES)]
        elif regime == "underspecified":
            namings = [n for n in namings if len(n) < len(world.FACTOR_NAMES)]
        self.namings = namings
        self.captions = [world.caption(n) for n in namings]
        self.model = model
        self.embeddings = torch.cat([model.encode_prompts(self.captions[i : i + 256]) for i in range(0, len(self.captions), 256)])
        # Rendering and encoding a batch costs about as much as a tiny model's update, so the pool is
        # made once (a fixed function of the seed) and batches index into it.
        pool_rng = np.random.default_rng(seed + 1)
        self.pool_caption = pool_rng.integers(0, len(namings), size=pool_size)
        latents = []
        for start in range(0, pool_size, 256):
            idx = self.pool_caption[start : start + 256]
            clips = np.stack([world.render(world.draw_factors(pool_rng, namings[i])) for i in idx])
            latents.append(model.encode_video(clips))
        self.pool = torch.cat(latents).float()  # real latents stay fp32 whatever the base's dtype
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> RealBatch:
        idx = self.rng.integers(0, len(self.pool), size=n)
        caption_idx = self.pool_caption[idx]
        return RealBatch(latents=self.pool[idx], cond=self.embeddings[caption_idx],
                         captions=[self.captions[i] for i in caption_idx])

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def read_captions(folder: Path) -> dict[Path, str]:
    """Video path -> caption, from captions.jsonl, captions.csv or sidecar .txt files (in that order)."""
    folder = Path(folder)
    captions: dict[Path, str] = {}
    if (folder / "captions.jsonl").is_file():
        for n, line in enumerate((folder / "captions.jsonl").read_text().splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    captions[folder / row["file"]] = str(row["caption"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"captions.jsonl line {n}: expected {{\"file\": ..., \"caption\": ...}}") from None
    elif (folder / "captions.csv").is_file():
        with open(folder / "captions.csv", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"file", "caption"} <= set(reader.fieldnames):
                raise DataError("captions.csv needs a header with the columns file,caption")
            for row in reader:
                captions[folder / row["file"]] = row["caption"]
    else:
        for video in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
            txt = video.with_suffix(".txt")
            if txt.is_file():
                captions[video] = txt.read_text()
    return {path: " ".join(text.split()) for path, text in captions.items()}


def fit_clip(frames: np.ndarray, num_frames: int, height: int, width: int, mode: str = "bilinear") -> np.ndarray:
    """Resize (short side, `mode` interpolation), centre-crop and evenly sample frames to (num_frames,
    height, width, 3)."""
    if len(frames) < num_frames:
        raise DataError(f"has {len(frames)} frames, needs at least {num_frames}")
    idx = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    x = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2).float()
    scale = max(height / x.shape[2], width / x.shape[3])
    size = (max(height, round(x.shape[2] * scale)), max(width, round(x.shape[3] * scale)))
    x = torch.nn.functional.interpolate(x, size=size, mode=mode, antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    x = x[:, :, top : top + height, left : left + width]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class FolderData:
    """The user's videos with captions, encoded once (cached) and served in random batches."""

    def __init__(self, folder: str | Path, model, seed: int = 0, progress=None):
        from ..media.video import VideoError, read_mp4

        folder = Path(folder)
        captions = read_captions(folder)
        if not captions:
            raise DataError(
                f"no captioned videos in {folder}: put a .txt caption beside each video, "
                "or a captions.csv (file,caption) or captions.jsonl"
            )
        cache = folder / ".dfd_cache"
        cache.mkdir(exist_ok=True)
        model_key = f"{model.source}|{model.num_frames}x{model.height}x{model.width}|{model.text_len}"
        latents, texts, self.report = [], [], FolderReport(used=0)
        for i, (path, caption) in enumerate(sorted(captions.items())):
            if progress:
                progress(i + 1, len(captions))
            if not caption:
                self.report.skipped.append((path.name, "empty caption"))
                continue
            if not path.is_file():
                self.report.skipped.append((path.name, "file listed in the captions is missing"))
                continue
            key = hashlib.sha1(path.read_bytes() + model_key.encode()).hexdigest()[:20]
            cached = cache / f"{key}.pt"
            if cached.is_file():
                latents.append(torch.load(cached, weights_only=True))
            else:
                try:
                    clip = fit_clip(read_mp4(path), model.num_frames, model.height, model.width)
                except (VideoError, DataError) as err:
                    self.report.skipped.append((path.name, str(err)))
                    continue
                lat = model.encode_video(clip[None])[0].cpu()
                torch.save(lat, cached)
                latents.append(lat)
            texts.append(caption)
            self.report.used += 1
        if not latents:
            reasons = "; ".join(f"{n}: {r}" for n, r in self.report.skipped[:3])
            raise DataError(f"no usable clips in {folder} ({len(self.report.skipped)} skipped: {reasons})")
        self.latents = torch.stack(latents).to(model.device, torch.float32)
        self.captions = texts
        unique = sorted(set(texts))
        emb = torch.cat([model.encode_prompts(unique[i : i + 64]) for i in range(0, len(unique), 64)])
        index = {c: j for j, c in enumerate(unique)}
        self.cond = emb[[index[c] for c in texts]]
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> RealBatch:
        idx = self.rng.integers(0, len(self.captions), size=n)
        return RealBatch(latents=self.latents[idx], cond=self.cond[idx], captions=[self.captions[i] for i in idx])

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class SyntheticData:
    """Random unit-scale latents at the model's video size under one caption: for speed and memory
    benchmarks of models whose data is not here (the Wan2.1-1.3B config with random weights)."""

    def __init__(self, model, seed: int = 0, pool_size: int = 4):
        self.captions = ["a synthetic clip for benchmarks"]
        shape = model.latent_shape(pool_size, model.num_frames, model.height, model.width)
        self.latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(model.device)
        self.cond = model.encode_prompts(self.captions)
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> RealBatch:
        idx = self.rng.integers(0, len(self.latents), size=n)
        return RealBatch(latents=self.latents[idx], cond=self.cond.expand(n, -1, -1), captions=self.captions * n)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def load_data(spec: str, model, regime: str = "detailed", seed: int = 0, progress=None, pool_size: int = 2048):
    """'shapes' -> ShapesData; 'synthetic' -> SyntheticData (benchmarks); a folder -> FolderData."""
    if spec == "shapes":
        return ShapesData(model, regime=regime, seed=seed, pool_size=pool_size)
    if spec == "synthetic":
        return SyntheticData(model, seed=seed)
    if not Path(spec).is_dir():
        raise DataError(f"data {spec!r} is neither 'shapes' nor a folder")
    return FolderData(spec, model, seed=seed, progress=progress)
