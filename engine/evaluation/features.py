"""Video feature extractors for the paper's diversity metric (Eq. 26) on real videos: CLIP and DINOv2
image encoders from transformers, applied to 16 evenly spaced frames and mean-pooled per video.

On the shapes world the bundled attribute recognizer plays this role (engine/shapes/recognizer.py). A spec
names an extractor: `clip:MODEL` or `dinov2:MODEL`, where MODEL is a local folder or a hub id such as
openai/clip-vit-large-patch14 or facebook/dinov2-large (the paper's ViT-L encoders).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FRAMES_PER_VIDEO = 16  # the paper: 16 evenly spaced frames, mean-pooled
# Normalization when the model folder has no preprocessor_config.json (the encoders' published values).
DEFAULT_STATS = {
    "clip": ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]),
    "dinov2": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}


class FeatureError(ValueError):
    """The extractor cannot be built; the message says why and what to do."""


def evenly_spaced(num_frames: int, count: int = FRAMES_PER_VIDEO) -> np.ndarray:
    """Indices of `count` evenly spaced frames (all of them, once each, when the video is shorter)."""
    if num_frames <= count:
        return np.arange(num_frames)
    return np.linspace(0, num_frames - 1, count).round().astype(int)


class ImageEncoderFeatures:
    """Per-video features from a transformers image encoder: CLS/pooled embedding of each chosen frame,
    mean-pooled over frames."""

    def __init__(self, kind: str, model: str, device: str = "cpu"):
        if kind not in DEFAULT_STATS:
            raise FeatureError(f"unknown feature extractor {kind!r}; use clip:MODEL or dinov2:MODEL")
        from transformers import CLIPVisionModelWithProjection, Dinov2Model

        cls = CLIPVisionModelWithProjection if kind == "clip" else Dinov2Model
        try:
            self.net = cls.from_pretrained(model).to(device).eval()
        except OSError as err:
            raise FeatureError(f"could not load {kind} encoder {model!r} ({type(err).__name__}); give a local "
                               "folder or a reachable hub id") from err
        self.kind, self.name, self.device = kind, f"{kind}:{model}", device
        mean, std = DEFAULT_STATS[kind]
        size = self.net.config.image_size
        processor = Path(model) / "preprocessor_config.json"
        if processor.is_file():
            cfg = json.loads(processor.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
            crop = cfg.get("crop_size")
            size = crop.get("height", size) if isinstance(crop, dict) else (crop or size)
        self.size = int(size)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames (N, H, W, 3) to normalized (N, 3, S, S): short side to S (bicubic), centre crop."""
        from ..distill.data import fit_clip

        square = fit_clip(frames, len(frames), self.size, self.size, mode="bicubic")
        x = torch.from_numpy(square).permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    @torch.no_grad()
    def video_features(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (B, F, H, W, 3) to one feature vector per clip (B, D)."""
        out = []
        for clip in clips:
            pixels = self._pixels(clip[evenly_spaced(len(clip))]).to(self.device)
            result = self.net(pixel_values=pixels)
            emb = result.image_embeds if self.kind == "clip" else result.pooler_output
            out.append(emb.float().mean(0).cpu().numpy())
        return np.stack(out)


def load_extractor(spec: str, device: str = "cpu") -> ImageEncoderFeatures:
    """`clip:MODEL` or `dinov2:MODEL` to an extractor."""
    kind, sep, model = spec.partition(":")
    if not sep or not model:
        raise FeatureError(f"bad feature extractor {spec!r}: write clip:MODEL or dinov2:MODEL "
                           "(MODEL a folder or a hub id, e.g. dinov2:facebook/dinov2-large)")
    return ImageEncoderFeatures(kind, model, device)
