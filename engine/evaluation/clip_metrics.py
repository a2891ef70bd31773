"""Metrics of one model's samples of one prompt, as the studio's Diversity table and a model card show
them: exact on the shapes world (the bundled recognizer names each clip's factors and embeds it), by a
CLIP/DINOv2 image encoder elsewhere, and colour and sharpness everywhere.

The recognizer and the last image encoder asked for are loaded once per process and kept.
"""

from __future__ import annotations

import threading

import numpy as np

from ..shapes import world
from . import metrics

NO_FEATURES = ("Diversity on real videos needs an image encoder: name one as dinov2:MODEL or clip:MODEL "
               "(a local folder or a hub id; the paper uses the ViT-L ones).")
NO_RECOGNIZER = ("Diversity metrics need the bundled shapes recognizer (engine/assets/shapes-recognizer), which is "
                 "not there yet; colour and sharpness are shown meanwhile.")
NOT_A_CAPTION = "The prompt is not a caption of the shapes world, so only diversity is measured (no known modes)."

_recognizer = None
_encoder = None
_lock = threading.Lock()  # one load at a time; the loaded models are only read afterwards


def recognizer():
    """The bundled shapes recognizer, loaded once; None when it is not bundled."""
    global _recognizer
    with _lock:
        if _recognizer is None:
            from ..shapes.recognizer import Recognizer

            try:
                _recognizer = Recognizer()
            except FileNotFoundError:
                return None
        return _recognizer


def encoder(spec: str):
    """The CLIP/DINOv2 extractor `spec` names (clip:MODEL or dinov2:MODEL), kept until another is asked
    for. Raises FeatureError for a spec that names no loadable encoder."""
    global _encoder
    with _lock:
        if _encoder is None or _encoder.name != spec:
            from .features import load_extractor

            _encoder = load_extractor(spec)
        return _encoder


def clip_metrics(clips: np.ndarray, prompt: str, world_name: str | None = None,
                 features: str | None = None) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness}, a note when some could
    not be measured or how diversity was). Values not measurable are None.

    world_name: 'shapes' for clips of the built-in world (recognizer metrics), else None; features: the
    image encoder for diversity outside it (clip:MODEL or dinov2:MODEL)."""
    out = {"diversity": None, "modes covered": None, "mode TV": None, "named correct": None}
    out["saturation"] = round(metrics.colour_stats(clips)["saturation"], 4)
    out["sharpness"] = round(metrics.sharpness(clips), 3)
    if world_name != "shapes":
        if not features:
            return out, NO_FEATURES
        extractor = encoder(features)
        out["diversity"] = round(metrics.diversity(extractor.video_features(clips)), 4)
        return out, f"Diversity by {extractor.name} (16 frames per video, mean-pooled); modes are known only on the shapes world."
    model = recognizer()
    if model is None:
        return out, NO_RECOGNIZER
    predicted, embedded = model.predict(clips)
    out["diversity"] = round(metrics.diversity(embedded), 4)
    try:
        named = world.parse_caption(prompt)
    except ValueError:
        return out, NOT_A_CAPTION
    out["modes covered"] = metrics.mode_coverage(named, predicted)
    tv = metrics.mode_tv(named, predicted)
    out["mode TV"] = None if tv is None else round(tv, 4)
    out["named correct"] = round(metrics.all_named_correct(named, predicted), 4) if named else None
    return out, None
