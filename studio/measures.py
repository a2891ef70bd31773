"""Metrics of one model's samples of one prompt, for the Diversity table and the model card: exact on the
shapes world (the bundled recognizer names each clip's factors and embeds it), colour and sharpness
everywhere."""

from __future__ import annotations

import os
import threading

import numpy as np

from engine.evaluation import metrics
from engine.shapes import world

from . import lineup

FEATURES_ENV = "DFD_STUDIO_FEATURES"  # e.g. dinov2:facebook/dinov2-large, or clip:/models/clip-vit-large
NO_FEATURES = (f"Diversity on real videos needs an image encoder: start the app with {FEATURES_ENV}=dinov2:MODEL "
               "or clip:MODEL (a local folder or a hub id; the paper uses the ViT-L ones).")
NO_RECOGNIZER = ("Diversity metrics need the bundled shapes recognizer (engine/assets/shapes-recognizer), which is "
                 "not there yet; colour and sharpness are shown meanwhile.")

_recognizer = None
_lock = threading.Lock()


def recognizer():
    """The bundled recognizer, loaded once; None when it is not bundled (yet)."""
    global _recognizer
    with _lock:
        if _recognizer is None:
            from engine.shapes.recognizer import Recognizer

            try:
                _recognizer = Recognizer()
            except FileNotFoundError:
                return None
        return _recognizer


_encoder = None


def encoder():
    """The CLIP/DINOv2 extractor named by DFD_STUDIO_FEATURES, loaded once; None when unset."""
    global _encoder
    spec = os.environ.get(FEATURES_ENV, "").strip()
    if not spec:
        return None
    with _lock:
        if _encoder is None or _encoder.name != spec:
            from engine.evaluation.features import load_extractor

            _encoder = load_extractor(spec)
        return _encoder


def clip_metrics(base: str, prompt: str, clips: np.ndarray) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness}, a note when some could
    not be measured). Values not measurable are None."""
    out = {"diversity": None, "modes covered": None, "mode TV": None, "named correct": None}
    out["saturation"] = round(metrics.colour_stats(clips)["saturation"], 4)
    out["sharpness"] = round(metrics.sharpness(clips), 3)
    if lineup.world_of(base) != "shapes":
        extractor = encoder()
        if extractor is None:
            return out, NO_FEATURES
        out["diversity"] = round(metrics.diversity(extractor.video_features(clips)), 4)
        return out, f"Diversity by {extractor.name} (16 frames per video, mean-pooled); modes are known only on the shapes world."
    model = recognizer()
    if model is None:
        return out, NO_RECOGNIZER
    predicted, features = model.predict(clips)
    out["diversity"] = round(metrics.diversity(features), 4)
    try:
        named = world.parse_caption(prompt)
    except ValueError:
        return out, "The prompt is not a caption of the shapes world, so only diversity is measured (no known modes)."
    out["modes covered"] = metrics.mode_coverage(named, predicted)
    tv = metrics.mode_tv(named, predicted)
    out["mode TV"] = None if tv is None else round(tv, 4)
    out["named correct"] = round(metrics.all_named_correct(named, predicted), 4) if named else None
    return out, None
