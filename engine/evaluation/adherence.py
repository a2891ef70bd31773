"""Prompt adherence on any base: CLIP text-video similarity.

For a clip and its prompt: the mean over 16 evenly spaced frames of the cosine between CLIP's embedding
of the prompt (text tower + projection) and of the frame (vision tower + projection). Higher means the
video shows more of what the prompt says; CLIP ViT-L/14 scores of matching pairs sit around 0.2-0.35.
The frames are preprocessed as the model's own image processor does (features.py), the prompt is cut to
CLIP's 77 tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .features import FeatureError, evenly_spaced, input_preprocessing, pixels, quiet_transformers


def has_text_tower(model: str) -> bool:
    """Whether `model` (a folder or hub id) is a whole CLIP model, not its vision tower alone."""
    from transformers.utils import cached_file  # transformers: only when CLIP is asked for

    path = cached_file(
        model,
        "config.json",
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        _raise_exceptions_for_gated_repo=False,
    )
    return bool(path) and json.loads(Path(path).read_text()).get("model_type") == "clip"


class ClipAdherence:
    """CLIP text-video similarity of clips to their prompt."""

    def __init__(self, model: str, device: str = "cpu"):
        from transformers import AutoTokenizer, CLIPModel  # transformers: only when CLIP is asked for

        if not has_text_tower(model):
            raise FeatureError(
                f"prompt adherence needs a whole CLIP model (text and vision towers); {model!r} is "
                "not one: name e.g. openai/clip-vit-large-patch14 or a folder holding it"
            )
        quiet_transformers()
        try:
            self.net = CLIPModel.from_pretrained(model).to(device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(model)
        except OSError as err:
            raise FeatureError(
                f"could not load the CLIP model {model!r} for prompt adherence "
                f"({type(err).__name__}); give a local folder or a reachable hub id"
            ) from err
        self.name, self.device = model, device
        self.prep = input_preprocessing("clip", model, self.net.config.vision_config.image_size)
        self.max_tokens = int(self.net.config.text_config.max_position_embeddings)

    @staticmethod
    def _embedding(output) -> torch.Tensor:
        """get_*_features returns a tensor, or in some transformers versions an output holding it."""
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    @torch.no_grad()
    def text_embedding(self, prompt: str) -> torch.Tensor:
        tokens = self.tokenizer(
            [prompt], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        text = self._embedding(self.net.get_text_features(**tokens)).float()
        return torch.nn.functional.normalize(text, dim=-1)[0]

    @torch.no_grad()
    def scores(self, clips: np.ndarray, prompt: str) -> list[float]:
        """One score per clip of uint8 clips (B, F, H, W, 3): mean over frames of cos(text, frame)."""
        text = self.text_embedding(prompt)
        out = []
        for clip in clips:
            frames = pixels(clip[evenly_spaced(len(clip))], self.prep).to(self.device, self.net.dtype)
            image = self._embedding(self.net.get_image_features(pixel_values=frames)).float()
            out.append(float((torch.nn.functional.normalize(image, dim=-1) @ text).mean()))
        return out
