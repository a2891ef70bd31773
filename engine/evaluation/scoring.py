"""One row of numbers per (model, prompt), and their means per model: the measuring half of
`python -m engine evaluate` (evaluate.py samples, report.py writes).

Every base: diversity on each CLIP/DINOv2 encoder asked for (paper Eq. 26), prompt adherence (CLIP
text-video similarity), colour and motion (colour.py), sharpness. The shapes world adds what its bundled
recognizer reads: diversity in its feature space, prompt fidelity, mode coverage and mode TV, flicker.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..media.frames import first_frame_psnr
from ..shapes import world
from . import metrics
from .colour import colour_motion
from .study_references import per_clip

# per-row keys averaged into a model's entry (others, e.g. diversity_dinov2, are found in the rows)
MEAN_KEYS = (
    "diversity",
    "prompt_fidelity",
    "all_named_correct",
    "mode_tv",
    "mode_coverage",
    "adherence",
    "saturation",
    "saturation_spread",
    "contrast",
    "contrast_spread",
    "motion",
    "clipped_fraction",
    "sharpness",
    "flicker",
    "saturation_error",
    "sharpness_ratio",
    "saturation_gap",
    "saturation_spread_gap",
    "contrast_gap",
    "contrast_spread_gap",
    "motion_gap",
    "frame_consistency",
    "first_frame_psnr",
    "posterior_motions",
)


def score_any(clips: np.ndarray, prompts: str | list[str], extractors=(), adherence=None, frame=None) -> dict:
    """What is measured on every base. `prompts`: the prompt of all clips, or one caption per clip; `frame`: the
    first frame an image-to-video model was given, which the clips' first frames are compared with (PSNR)."""
    row = {f"diversity_{x.kind}": metrics.diversity(x.video_features(clips)) for x in extractors}
    if adherence is not None:
        if isinstance(prompts, str):
            row["adherence"] = float(np.mean(adherence.scores(clips, prompts)))
        else:
            row["adherence"] = float(np.mean([adherence.scores(c[None], p)[0] for c, p in zip(clips, prompts)]))
    row.update(colour_motion(clips))
    row["clipped_fraction"] = metrics.colour_stats(clips)["clipped_fraction"]
    row["sharpness"] = metrics.sharpness(clips)
    if frame is not None:
        row["first_frame_psnr"] = first_frame_psnr(clips, frame)
    return row


def score_shapes(
    named: dict, clips: np.ndarray, prompt: str, recognizer, extractors=(), adherence=None, first=None, frames="edge"
) -> dict:
    """score_any and the recognizer's reading of the shapes world (named: the factors the prompt names).

    first: for an image-to-video model, the factors of the clip whose first frame conditioned it. The frame
    fixes shape, colour and background, so only motion is free: modes are motions, their truth the motion
    posterior given the frame (world.motion_posterior); the row adds frame_consistency (the clips show the
    frame's shape, colour and background), first_frame_psnr and posterior_motions (the motions an exact
    sampler of the posterior shows in as many draws). frames: the frame law the posterior is exact over."""
    predicted, features = recognizer.predict(clips)
    acc = metrics.attribute_accuracy(named, predicted)
    fixed, truth_of, i2v = named, None, {}
    if first is not None:
        in_frame = world.in_frame(first)
        fixed = {**in_frame, **named}
        truth_of = {"motion": world.motion_posterior(first, frames=frames)[0]}
        i2v = {
            "posterior_motions": 1.0 if "motion" in named else world.expected_motions(truth_of["motion"], len(clips)),
            "frame_consistency": metrics.all_named_correct(in_frame, predicted),
            "first_frame_psnr": first_frame_psnr(clips, world.render(first)[0]),
            "first_frame_of": asdict(first),
            **({"frame_law": frames} if frames != "edge" else {}),  # the law the posterior is exact over
        }  # the conditioning clip, for the study's references
    return {
        "diversity": metrics.diversity(features),
        "prompt_fidelity": float(np.mean(list(acc.values()))) if acc else None,
        "all_named_correct": metrics.all_named_correct(named, predicted) if named else None,
        "factor_accuracy": acc,
        "mode_tv": metrics.mode_tv(fixed, predicted, truth_of),
        "mode_coverage": metrics.mode_coverage(fixed, predicted),
        "flicker": metrics.flicker(clips),
        **i2v,
        **per_clip(predicted, clips),  # each clip's factors and saturation (study_references.py)
        **score_any(clips, prompt, extractors, adherence),
    }


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 6) if values else None


def aggregate(rows: list[dict], factor_names=()) -> dict:
    """The mean of each metric over a model's rows (None where no row has it)."""
    extra = sorted({k for r in rows for k in r if k.startswith("diversity_")})
    out = {k: mean(r.get(k) for r in rows) for k in (*MEAN_KEYS, *extra)}
    if factor_names:
        out["factor_accuracy"] = {f: mean(r["factor_accuracy"].get(f) for r in rows) for f in factor_names}
    return out
