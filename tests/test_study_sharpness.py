"""Mode-matched sharpness (engine/evaluation/study_sharpness.py): each prompt's clips against decoded real clips
of the modes the recognizer read in them."""

import numpy as np
import pytest

from engine.evaluation import metrics, study, study_sharpness
from engine.shapes import world

BRIGHT = {"shape": "circle", "colour": "yellow", "motion": "left", "background": "dark"}
FAINT = {"shape": "circle", "colour": "yellow", "motion": "left", "background": "sand"}


def test_a_set_of_clips_has_the_root_mean_square_of_its_clips_sharpness():
    a, _ = world.sample_clips(BRIGHT, 4, seed=1)
    b, _ = world.sample_clips(FAINT, 4, seed=2)
    both = metrics.sharpness(np.concatenate([a, b]))
    assert both == pytest.approx(np.sqrt((metrics.sharpness(a) ** 2 + metrics.sharpness(b) ** 2) / 2), rel=1e-5)


def test_modes_differ_in_sharpness_so_a_prompt_is_judged_at_the_modes_it_shows():
    bright = study_sharpness.mode_sharpness(BRIGHT, "shapes-tiny")
    faint = study_sharpness.mode_sharpness(FAINT, "shapes-tiny")
    assert bright > 5 * faint  # a yellow object on dark against one on sand: why a mixed reference misleads
    exact = np.sqrt((bright**2 + faint**2) / 2)
    row = {"sharpness": exact, "clip_factors": [BRIGHT, FAINT]}
    terms = study_sharpness.prompt_terms(row, "shapes-tiny")
    assert terms["sharpness_vs_decoded_matched"] == pytest.approx(1.0) and terms["sharpness_deviation_matched"] < 1e-9
    blurred = study_sharpness.prompt_terms({**row, "sharpness": exact / 2}, "shapes-tiny")
    assert blurred["sharpness_vs_decoded_matched"] == pytest.approx(0.5)
    assert study_sharpness.prompt_terms({"sharpness": 2.0}, "shapes-tiny") == {}  # no clip factors recorded


def test_the_study_derives_it_per_regime_beside_the_old_ratio():
    prompt = world.caption({})  # "a shape": any mode is one of its own
    faint = study_sharpness.mode_sharpness(FAINT, "shapes-tiny")
    row = {"sharpness": faint, "clip_factors": [FAINT, FAINT], "clip_saturation": [0.4, 0.4], "saturation": 0.4}
    result = {  # as rederive merges a seed's runs: no base of its own, the references' is used
        "models": {"r/seed0/dfd-p0.5": {"nfe": 4, "by_regime": {"underspecified": {"diversity": 0.2}}}},
        "per_prompt": {"r/seed0/dfd-p0.5": {prompt: row}},
    }
    references = {
        "base": "shapes-tiny",
        "models": {"real-decoded": {"nfe": 0, "by_regime": {"underspecified": {}}}},
        "per_prompt": {"real-decoded": {prompt: {"sharpness": 4 * faint, "saturation": 0.4}}},
    }
    out = study.combine(references, {0: result})["models"]["dfd-p0.5"]["by_regime"]["underspecified"]
    assert out["sharpness_vs_decoded_matched"]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert out["sharpness_vs_decoded"]["mean"] == pytest.approx(0.25, abs=1e-4)  # the old one, unchanged
    assert "sharpness_vs_decoded_matched" in study.METRICS and "sharpness_vs_decoded" in study.METRICS
