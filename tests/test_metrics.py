"""Metrics of the shapes world, pinned on cases with known answers."""

import numpy as np
import pytest

from engine.evaluation import metrics
from engine.shapes import world


def test_diversity_is_zero_for_identical_features_and_one_for_orthogonal_ones():
    same = np.ones((4, 8))
    assert metrics.diversity(same) == pytest.approx(0.0, abs=1e-6)
    assert metrics.diversity(np.eye(4)) == pytest.approx(1.0)


def test_mode_metrics_on_a_collapsed_and_a_faithful_set():
    named = {"colour": "red", "motion": "left", "background": "dark"}  # shape is free
    collapsed = [{"shape": "circle", **named}] * 10
    faithful = [{"shape": s, **named} for s in ["circle"] * 4 + ["square"] * 3 + ["triangle"] * 2 + ["diamond"]]
    assert metrics.mode_coverage(named, collapsed) == 1 and metrics.mode_coverage(named, faithful) == 4
    assert metrics.mode_tv(named, faithful) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mode_tv(named, collapsed) == pytest.approx(0.6)  # 0.5 * (0.6 + 0.3 + 0.2 + 0.1)
    full = {**named, "shape": "circle"}
    assert metrics.mode_tv(full, collapsed) is None


def test_attribute_accuracy_counts_only_named_factors():
    named = {"colour": "red"}
    predicted = [{"colour": "red", "shape": "circle"}, {"colour": "blue", "shape": "circle"}]
    assert metrics.attribute_accuracy(named, predicted) == {"colour": 0.5}
    assert metrics.all_named_correct(named, predicted) == 0.5


def test_saturation_sharpness_and_flicker_respond_the_right_way():
    clips, _ = world.sample_clips({"background": "gray"}, 4, seed=0)
    boosted = np.clip((clips.astype(float) - 128) * 1.8 + 128, 0, 255).astype(np.uint8)
    assert metrics.colour_stats(boosted)["saturation"] > metrics.colour_stats(clips)["saturation"]
    assert metrics.colour_stats(boosted)["clipped_fraction"] > metrics.colour_stats(clips)["clipped_fraction"]
    blurred = ((clips[:, :, :-1].astype(float) + clips[:, :, 1:]) / 2).astype(np.uint8)
    blurred = ((blurred[:, :, :, :-1].astype(float) + blurred[:, :, :, 1:]) / 2).astype(np.uint8)
    assert metrics.sharpness(blurred) < metrics.sharpness(clips)
    noisy = np.clip(clips + np.random.default_rng(0).integers(-30, 30, clips.shape), 0, 255).astype(np.uint8)
    assert metrics.flicker(noisy) > metrics.flicker(clips) + 5
