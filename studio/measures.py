"""Metrics of one model's samples of one prompt, for the Diversity table and the model card: exact on the
shapes world (the bundled recognizer names each clip's factors and embeds it), colour and sharpness
everywhere."""

from __future__ import annotations

import threading

import numpy as np

from engine import metrics, world

from . import lineup

NO_FEATURES = "Diversity metrics need the shapes world or CLIP/DINO features (coming)."
NO_RECOGNIZER = ("Diversity metrics need the bundled shapes recognizer (engine/assets/shapes-recognizer), which is "
                 "not there yet; colour and sharpness are shown meanwhile.")

_recognizer = None
_lock = threading.Lock()


def recognizer():
    """The bundled recognizer, loaded once; None when it is not bundled (yet)."""
    global _recognizer
    with _lock:
        if _recognizer is None:
            from engine.recognizer import Recognizer

            try:
                _recognizer = Recognizer()
            except FileNotFoundError:
                return None
        return _recognizer


def clip_metrics(base: str, prompt: str, clips: np.ndarray) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness}, a note when some could
    not be measured). Values not measurable are None."""
    out = {"diversity": None, "modes covered": None, "mode TV": None, "named correct": None}
    out["saturation"] = round(metrics.colour_stats(clips)["saturation"], 4)
    out["sharpness"] = round(metrics.sharpness(clips), 3)
    if lineup.world_of(base) != "shapes":
        return out, NO_FEATURES
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
