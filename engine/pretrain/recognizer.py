"""Training the shapes world's attribute recognizer (`train-recognizer`) on fresh real clips, half of them
passed through the teacher's autoencoder, so that it reads decoded samples the same way it reads real
clips. Its held-out accuracy is stored beside the weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..config.teacher import RecognizerConfig
from ..models.base import load_base_model
from ..models.folders import written_folder
from ..shapes import world
from ..shapes.autoencoder import frames_to_tensor
from ..shapes.recognizer import AttributeRecognizer


def _labels(factors: list[world.ClipFactors]) -> dict[str, torch.Tensor]:
    return {
        name: torch.tensor([list(world.FACTORS[name]).index(getattr(f, name)) for f in factors])
        for name in world.FACTOR_NAMES
    }


def _roundtrip(vae, clips: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        x = frames_to_tensor(clips)
        return vae.decode(vae.encode(x).latent_dist.mode(), return_dict=False)[0]


def train_recognizer(cfg: RecognizerConfig, out: Path, command: str, progress=None) -> dict:
    """Train on fresh real clips every step; report held-out accuracy on raw and round-tripped clips."""
    started = time.time()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vae = load_base_model(cfg.autoencoder, device="cpu").vae
    model = AttributeRecognizer()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(cfg.steps):
        factors = [world.draw_factors(rng) for _ in range(cfg.batch_size)]
        clips = np.stack([world.render(f) for f in factors])
        half = cfg.batch_size // 2
        video = torch.cat([frames_to_tensor(clips[:half]), _roundtrip(vae, clips[half:])])
        video = video + 0.03 * torch.randn_like(video)  # samples are never pixel-perfect
        logits = model(video)
        labels = _labels(factors)
        loss = sum(loss_fn(logits[name], labels[name]) for name in world.FACTOR_NAMES)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress:
            progress(step + 1, cfg.steps, float(loss.detach()))
    model.eval()
    held_clips, held_factors = world.sample_clips({}, cfg.heldout_clips, seed=10_000 + cfg.seed)
    accuracy = {
        "real": _accuracy(model, frames_to_tensor(held_clips), held_factors),
        "autoencoder_roundtrip": _accuracy(model, _roundtrip(vae, held_clips), held_factors),
    }
    meta = {
        "made_by": command,
        "config": asdict(cfg),
        "world_ranges": world.continuous_ranges(),
        "heldout_accuracy": accuracy,
        "train_seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    with written_folder(out) as tmp:
        save_file(model.state_dict(), tmp / "model.safetensors")
        (tmp / "recognizer.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@torch.no_grad()
def _accuracy(model: AttributeRecognizer, video: torch.Tensor, factors) -> dict[str, float]:
    labels = _labels(factors)
    preds = {name: [] for name in world.FACTOR_NAMES}
    for i in range(0, len(video), 64):
        for name, logits in model(video[i : i + 64]).items():
            preds[name].append(logits.argmax(-1))
    return {
        name: round(float((torch.cat(preds[name]) == labels[name]).float().mean()), 4) for name in world.FACTOR_NAMES
    }
