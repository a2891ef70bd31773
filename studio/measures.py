"""Metrics of one model's samples of one prompt, for the Diversity table and the model card (the engine
measures them: `engine.clip_metrics`). Outside the shapes world diversity needs an image encoder, which
the app is given by an environment variable."""

from __future__ import annotations

import os

import numpy as np

import engine

FEATURES_ENV = "DFD_STUDIO_FEATURES"  # e.g. dinov2:facebook/dinov2-large, or clip:/models/clip-vit-large
NO_FEATURES = (f"Diversity on real videos needs an image encoder: start the app with {FEATURES_ENV}=dinov2:MODEL "
               "or clip:MODEL (a local folder or a hub id; the paper uses the ViT-L ones).")


def clip_metrics(base: str, prompt: str, clips: np.ndarray) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness}, a note when some could
    not be measured). Values not measurable are None."""
    world_name = engine.world_of(base)
    features = os.environ.get(FEATURES_ENV, "").strip() or None
    values, note = engine.clip_metrics(clips, prompt, world_name, features)
    if world_name != "shapes" and features is None:
        note = NO_FEATURES  # the app's own setting is what to change
    return values, note
