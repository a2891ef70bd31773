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

from ..distill.data import resize_crop

FRAMES_PER_VIDEO = 16  # the paper: 16 evenly spaced frames, mean-pooled
# The encoders' published preprocessing, used when a model has no preprocessor_config.json (a folder
# written by model.save_pretrained alone): normalization, the short side resized to `resize`, a centre
# crop of `crop`. DINOv2's hub processor resizes to 256 and crops 224 whatever its config.image_size (518,
# the last pretraining stage's size) says, so that size is never the fallback: one model, one input size.
PUBLISHED = {
    "clip": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
    "dinov2": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": 256, "crop": 224},
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
        if kind not in PUBLISHED:
            raise FeatureError(f"unknown feature extractor {kind!r}; use clip:MODEL or dinov2:MODEL")
        # transformers: only when an encoder is loaded
        from transformers import CLIPVisionModelWithProjection, Dinov2Model

        cls = CLIPVisionModelWithProjection if kind == "clip" else Dinov2Model
        quiet_transformers()
        try:
            self.net = cls.from_pretrained(model).to(device).eval()
        except OSError as err:
            raise FeatureError(
                f"could not load {kind} encoder {model!r} ({type(err).__name__}); give a local "
                "folder or a reachable hub id"
            ) from err
        self.kind, self.name, self.device = kind, f"{kind}:{model}", device
        self.prep = input_preprocessing(kind, model, self.net.config.image_size)
        self.resize, self.size = self.prep["resize"], self.prep["crop"]

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        return pixels(frames, self.prep)

    @torch.no_grad()
    def video_features(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (B, F, H, W, 3) to one feature vector per clip (B, D)."""
        out = []
        for clip in clips:
            frames = self._pixels(clip[evenly_spaced(len(clip))]).to(self.device, self.net.dtype)
            result = self.net(pixel_values=frames)
            emb = result.image_embeds if self.kind == "clip" else result.pooler_output
            out.append(emb.float().mean(0).cpu().numpy())
        return np.stack(out)


def quiet_transformers() -> None:
    """No loading bars or load reports (a CLIP model's text tower is unused here and would be listed
    key by key): they would bury the evaluation's own progress bar."""
    import transformers  # transformers: only when an encoder is loaded

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _edge(value, fallback: int) -> int:
    """A processor size entry ({"height": 224, ...}, {"shortest_edge": 256} or 224) as one number."""
    if isinstance(value, dict):
        return int(value.get("shortest_edge") or value.get("height") or fallback)
    return int(value or fallback)


def preprocessor_config(model: str) -> dict:
    """The model's preprocessor_config.json, from its folder or its hub repo (the local cache first),
    {} when it has none: a hub id and a local copy of it read the same file."""
    from transformers.utils import cached_file  # transformers: only when an encoder is checked

    path = cached_file(
        model,
        "preprocessor_config.json",
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        _raise_exceptions_for_gated_repo=False,
    )
    return json.loads(Path(path).read_text()) if path else {}


def input_preprocessing(kind: str, model: str, image_size: int) -> dict:
    """{mean, std, resize, crop} for an encoder: its processor's values, else the published ones (CLIP's
    crop is its config's image size, since its position embeddings fix it)."""
    published = PUBLISHED[kind]
    crop_default = published.get("crop", image_size)
    cfg = preprocessor_config(model)
    if cfg:
        crop = _edge(cfg.get("crop_size"), crop_default) if cfg.get("do_center_crop", True) else None
        resize = _edge(cfg.get("size"), crop or crop_default)
        crop = crop or resize
    else:
        crop, resize = crop_default, published.get("resize", crop_default)
    return {
        "mean": cfg.get("image_mean", published["mean"]),
        "std": cfg.get("image_std", published["std"]),
        "resize": max(resize, crop),
        "crop": crop,
    }


def pixels(frames: np.ndarray, prep: dict) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) to normalized (N, 3, S, S) as an image processor makes them: the short
    side to prep["resize"] (bicubic), then the centre S x S, S = prep["crop"]."""
    resize, crop = prep["resize"], prep["crop"]
    square = resize_crop(frames, resize, resize, mode="bicubic")
    top = (resize - crop) // 2
    x = torch.from_numpy(np.ascontiguousarray(square[:, top : top + crop, top : top + crop]))
    x = x.permute(0, 3, 1, 2).float() / 255.0
    mean, std = (torch.tensor(prep[k], dtype=torch.float32).view(1, 3, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std


def load_extractor(spec: str, device: str = "cpu") -> ImageEncoderFeatures:
    """`clip:MODEL` or `dinov2:MODEL` to an extractor."""
    kind, sep, model = spec.partition(":")
    if not sep or not model:
        raise FeatureError(
            f"bad feature extractor {spec!r}: write clip:MODEL or dinov2:MODEL "
            "(MODEL a folder or a hub id, e.g. dinov2:facebook/dinov2-large)"
        )
    return ImageEncoderFeatures(kind, model, device)
