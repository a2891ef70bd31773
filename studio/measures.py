"""Metrics of one model's samples of one prompt, for the Diversity table and the model card (the engine
measures them: `engine.clip_metrics`). Outside the shapes world diversity and prompt adherence need image
encoders: the feature models the page's box names, which starts as DFD_STUDIO_FEATURES when the app was
given one."""

from __future__ import annotations

import os

import numpy as np

import engine

FEATURES_ENV = "DFD_STUDIO_FEATURES"  # e.g. clip:openai/clip-vit-large-patch14,dinov2:facebook/dinov2-large
NO_FEATURES = (
    "Diversity and prompt adherence on real videos need image encoders: name them in Feature models as "
    "clip:MODEL,dinov2:MODEL (a local folder or a hub id; the paper uses openai/clip-vit-large-patch14 "
    "and facebook/dinov2-large)."
)


def default_features() -> str:
    """The feature models the page starts with: the app's DFD_STUDIO_FEATURES, else none."""
    return os.environ.get(FEATURES_ENV, "").strip()


def check_features(text: str | None) -> str:
    """The box's feature models, checked (each a model folder or a reachable hub id); ValueError in one
    line naming the one that is not."""
    try:
        return ",".join(engine.check_features(text or ""))
    except engine.ConfigError as err:
        raise ValueError(err.worded(lambda _: "Feature models")) from None


def clip_metrics(
    base: str, prompt: str, clips: np.ndarray, features: str | None = None, first: dict | None = None
) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness, ...}, a note when some
    could not be measured). Values not measurable are None. `features`: the feature models (None: the
    app's default); first: an image-to-video request's frame factors (frames.factors_of)."""
    world_name = engine.world_of(base)
    features = default_features() if features is None else features.strip()
    values, note = engine.clip_metrics(clips, prompt, world_name, features or None, first)
    if world_name != "shapes" and not features:
        note = NO_FEATURES  # the page's own box is what to change
    return values, note
