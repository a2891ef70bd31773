"""The attribute recognizer of the shapes world: a small 3D conv net that names a clip's shape, colour,
motion and background, and embeds it (the feature space of diversity metrics). Its training
(`train-recognizer`) is engine/pretrain/recognizer.py; the trained weights are bundled in
engine/assets/shapes-recognizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from . import world
from .autoencoder import frames_to_tensor

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "assets" / "shapes-recognizer"
FEATURE_DIM = 64


class AttributeRecognizer(nn.Module):
    """(B, 3, F, 64, 64) video in [-1, 1] -> a FEATURE_DIM embedding and one logit head per factor."""

    def __init__(self):
        super().__init__()

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(4, cout), nn.SiLU())

        self.body = nn.Sequential(
            block(3, 16, (1, 2, 2)),
            block(16, 32, (2, 2, 2)),
            block(32, 64, (2, 2, 2)),
            block(64, FEATURE_DIM, (2, 2, 2)),
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(FEATURE_DIM, len(world.FACTORS[name])) for name in world.FACTOR_NAMES}
        )

    def features(self, video: torch.Tensor) -> torch.Tensor:
        return self.body(video).mean(dim=(2, 3, 4))

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.features(video)
        return {name: head(feats) for name, head in self.heads.items()}


class Recognizer:
    """The bundled, trained recognizer: predicts factors and embeds clips."""

    def __init__(self, folder: Path = DEFAULT_DIR):
        folder = Path(folder)
        if not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"no attribute recognizer at {folder}; train it with `python -m engine train-recognizer --out {folder}`"
            )
        self.model = AttributeRecognizer()
        self.model.load_state_dict(load_file(folder / "model.safetensors"))
        self.model.eval()
        self.meta = json.loads((folder / "recognizer.json").read_text())

    @torch.no_grad()
    def predict(self, clips: np.ndarray) -> tuple[list[dict[str, str]], np.ndarray]:
        """For uint8 clips (B, F, H, W, 3): each clip's predicted factors, and features (B, FEATURE_DIM)."""
        names, feats = [], []
        for i in range(0, len(clips), 64):
            video = frames_to_tensor(clips[i : i + 64])
            f = self.model.features(video)
            feats.append(f.numpy())
            idx = {name: head(f).argmax(-1).tolist() for name, head in self.model.heads.items()}
            for j in range(video.shape[0]):
                names.append({name: list(world.FACTORS[name])[idx[name][j]] for name in world.FACTOR_NAMES})
        return names, np.concatenate(feats)
