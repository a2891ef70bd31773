"""Metrics of one model's samples of one prompt, as the studio's Diversity table and a model card show
them: exact on the shapes world (the bundled recognizer names each clip's factors and embeds it), by a
CLIP/DINOv2 image encoder elsewhere, and colour and sharpness everywhere.

The recognizer, the last image encoder of each kind and the last CLIP model of prompt adherence asked for
are loaded once per process and kept.
"""

from __future__ import annotations

import threading

import numpy as np

from ..shapes import world
from . import metrics
from .colour import colour_motion

NO_FEATURES = (
    "Diversity on real videos needs an image encoder: name one as dinov2:MODEL or clip:MODEL "
    "(a local folder or a hub id; the paper uses the ViT-L ones); a whole CLIP model also gives prompt "
    "adherence."
)
NO_RECOGNIZER = (
    "Diversity metrics need the bundled shapes recognizer (engine/assets/shapes-recognizer), which is "
    "not there yet; colour and sharpness are shown meanwhile."
)
UNKNOWN_FRAME = (
    "Modes covered counts the motions drawn from the uploaded frame; mode TV needs a frame from the "
    "world, whose true motion frequencies are known."
)
NOT_A_CAPTION = "The prompt is not a caption of the shapes world, so only diversity is measured (no known modes)."

_recognizer = None
_encoders: dict[str, object] = {}  # kind (clip, dinov2) -> the last extractor of that kind
_adherence = None
_lock = threading.Lock()  # one load at a time; the loaded models are only read afterwards


def recognizer():
    """The bundled shapes recognizer, loaded once; None when it is not bundled."""
    global _recognizer
    with _lock:
        if _recognizer is None:
            from ..shapes.recognizer import Recognizer  # torch: only when the metrics are computed

            try:
                _recognizer = Recognizer()
            except FileNotFoundError:
                return None
        return _recognizer


def encoder(spec: str):
    """The CLIP/DINOv2 extractor `spec` names (clip:MODEL or dinov2:MODEL), kept until another of its kind
    is asked for. Raises FeatureError for a spec that names no loadable encoder."""
    kind = spec.partition(":")[0]
    with _lock:
        if kind not in _encoders or _encoders[kind].name != spec:
            from .features import load_extractor  # torch and transformers: only when an encoder is asked for

            _encoders[kind] = load_extractor(spec)
        return _encoders[kind]


def adherence_model(spec: str):
    """The prompt-adherence model of a clip:MODEL spec when MODEL is a whole CLIP model, else None."""
    global _adherence
    model = spec.partition(":")[2]
    with _lock:
        if _adherence is None or _adherence.name != model:
            from .adherence import ClipAdherence, has_text_tower  # torch and transformers: only when CLIP is asked for

            if not has_text_tower(model):
                return None
            _adherence = ClipAdherence(model)
        return _adherence


def _any_base(clips: np.ndarray, prompt: str, features: list[str]) -> tuple[dict, str]:
    """Diversity per encoder (two clips or more: one clip has none, and no encoder is loaded for it),
    prompt adherence, colour and motion outside the shapes world."""
    out, names = {}, []
    for spec in features:
        kind = spec.partition(":")[0]
        if len(clips) >= 2:
            extractor = encoder(spec)
            value = round(metrics.diversity(extractor.video_features(clips)), 4)
            out[f"diversity {extractor.kind}"] = value
            out.setdefault("diversity", value)
            names.append(extractor.name)
        if kind == "clip":
            scorer = adherence_model(spec)
            if scorer is not None:
                out["adherence"] = round(float(np.mean(scorer.scores(clips, prompt))), 4)
    if not names:
        return out, "Adherence: CLIP text-video similarity (16 frames); one clip has no diversity."
    note = (
        f"Diversity by {', '.join(names)} (16 frames per video, mean-pooled; the first one in the diversity "
        "column); adherence: CLIP text-video similarity; modes are known only on the shapes world."
    )
    return out, note


def clip_metrics(
    clips: np.ndarray,
    prompt: str,
    world_name: str | None = None,
    features: str | list[str] | None = None,
    first: dict | None = None,
) -> tuple[dict, str | None]:
    """({diversity, modes covered, mode TV, named correct, saturation, sharpness, ...}, a note when some
    could not be measured or how diversity was). Values not measurable are None.

    world_name: 'shapes' for clips of the built-in world (recognizer metrics), else None; features: the
    image encoders for diversity outside it ('clip:MODEL,dinov2:MODEL' or a list of such specs); a whole
    CLIP model among them also gives prompt adherence (CLIP text-video similarity). first: for clips of an
    image-to-video model on the world, the factors of the clip its first frame is from ({} when the frame is
    an upload of unknown factors): the frame fixes shape, colour and background, so modes are motions, their
    TV against p(motion | frame) when the factors are known."""
    out = {"diversity": None, "modes covered": None, "mode TV": None, "named correct": None}
    stats = colour_motion(clips)
    out["saturation"] = round(stats["saturation"], 4)
    out["saturation spread"] = round(stats["saturation_spread"], 4)
    out["contrast"] = round(stats["contrast"], 4)
    out["motion"] = round(stats["motion"], 4)
    out["sharpness"] = round(metrics.sharpness(clips), 3)
    if world_name != "shapes":
        specs = [f.strip() for f in (features.split(",") if isinstance(features, str) else features or []) if f.strip()]
        if not specs:
            return out, NO_FEATURES
        measured, note = _any_base(clips, prompt, specs)
        return {**out, **measured}, note
    model = recognizer()
    if model is None:
        return out, NO_RECOGNIZER
    predicted, embedded = model.predict(clips)
    out["diversity"] = round(metrics.diversity(embedded), 4) if len(clips) >= 2 else None  # none within one clip
    try:
        named = world.parse_caption(prompt)
    except ValueError:
        return out, NOT_A_CAPTION
    if first is not None:
        return {**out, **_from_a_frame(named, predicted, first)}, None if first else UNKNOWN_FRAME
    out["modes covered"] = metrics.mode_coverage(named, predicted)
    tv = metrics.mode_tv(named, predicted)
    out["mode TV"] = None if tv is None else round(tv, 4)
    out["named correct"] = round(metrics.all_named_correct(named, predicted), 4) if named else None
    return out, None


def _from_a_frame(named: dict, predicted: list[dict], first: dict) -> dict:
    """An image-to-video request's modes: its motions (the frame fixes the rest), TV against the motion
    posterior of the frame when its factors are known."""
    out = {
        "modes covered": len({p["motion"] for p in predicted}) if "motion" not in named else 1,
        "mode TV": None,
        "named correct": round(metrics.all_named_correct(named, predicted), 4) if named else None,
    }
    if first and "motion" not in named:
        clip = world.ClipFactors(**first)
        truth = {"motion": world.motion_posterior(clip)[0]}
        out["mode TV"] = round(metrics.mode_tv({**world.in_frame(clip), **named}, predicted, truth), 4)
    return out
