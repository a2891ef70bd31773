"""The Distill tab's "When DFD helps": when to reach for DFD, then the built-in study's headline figures, every
one read from docs/results/study*.json through claims.py's phrasing (so the tab and the README never quote
different figures). Torch-free: the studio reads it through engine.study_summary."""

from __future__ import annotations

from pathlib import Path

from .claims import (
    AXES,
    CONTROL,
    DFD,
    I2V_NAMES,
    KNOBS,
    RESULTS,
    ResultsError,
    axis_phrase,
    diff_words,
    load_studies,
    mean_of,
    number,
    seed_count,
    wrap_lines,
)


def tab_text(studies: dict[str, dict]) -> str:
    """The Distill tab's "When DFD helps": when to use it, then the study's headline figures."""
    t2v, i2v, ar = studies["t2v"], studies["i2v"], studies["ar"]

    def said(study, metric, regime, names=None):
        _, verdict = diff_words(study, DFD, metric, regime, CONTROL, AXES[(metric, regime)][1])
        return axis_phrase(study, DFD, metric, regime, names or {}, interval=False) + f" ({verdict})"

    lines = [
        "DFD pulls the student towards a real clip of the same caption, so it helps when that clip is close to "
        "the student's own sample: detailed captions (one mode per caption) and *paired* student inputs (the "
        "student starts from that very clip, noised). Watch the validity gap ||x_real - G||^2 in Jobs, and "
        "compare against a DMD2 run continued for as many steps.",
        "",
        f"Measured on the built-in world (docs/results.md), DFD p = 0.5 against DMD2 continued, "
        f"{seed_count(t2v)} training seeds (better / worse: resolved, the 95% interval over seeds excludes 0):",
        f"- {said(t2v, 'mode_coverage', 'underspecified')}; {said(t2v, 'prompt_fidelity', 'underspecified')}; "
        f"{said(t2v, 'prompt_fidelity', 'detailed')}; {said(t2v, 'all_named_correct', 'detailed')}.",
    ]
    if "teacher@4:cfg=1" in t2v["models"]:  # the frontier: no 4-NFE model here wins every axis
        axes = (("mode_coverage", 2), ("prompt_fidelity", 3))
        m = {r: [number(mean_of(t2v, r, k, "underspecified"), d) for k, d in axes] for r in ("teacher@4:cfg=1", DFD)}
        lines.append(
            f"- No setting wins every axis: at 4 NFE the teacher without CFG covers {m['teacher@4:cfg=1'][0]} modes "
            f"against DFD's {m[DFD][0]} at fidelity {m['teacher@4:cfg=1'][1]} against {m[DFD][1]} (underspecified); "
            "DFD buys modes with some fidelity, the control keeps fidelity and loses modes."
        )
    for name in ("dfd-tmin0.5", "dfd-p0.5-rise"):
        if name in t2v["models"]:
            modes, mv = diff_words(t2v, name, "mode_coverage", "underspecified", CONTROL, 2)
            fid, fv = diff_words(t2v, name, "prompt_fidelity", "underspecified", CONTROL, 3)
            named, nv = diff_words(t2v, name, "all_named_correct", "detailed", CONTROL, 3)
            lines.append(
                f"- {KNOBS.get(name, name)} (Advanced; `{name}`): modes {modes} ({mv}), underspecified fidelity "
                f"{fid} ({fv}), all named correct (detailed) {named} ({nv})."
            )
    lines += [
        f"- Causal (ar) students, {seed_count(ar)} seeds: {said(ar, 'mode_coverage', 'underspecified')}.",
        f"- Image-to-video, {seed_count(i2v)} seeds: {said(i2v, 'mode_coverage', 'underspecified', I2V_NAMES)}; "
        f"{said(i2v, 'sharpness_deviation', 'underspecified')}.",
    ]
    return wrap_lines(lines)


def study_summary(folder: Path = RESULTS) -> str:
    """The Distill tab's text, or one sentence on why the study's figures cannot be shown."""
    try:
        return tab_text(load_studies(folder))
    except ResultsError as err:
        return f"The study's figures are not available here: {err}"
