"""The degradations of the reader check (engine/evaluation/reader_check.py) do what they say, measured."""

import numpy as np
import pytest

from engine.evaluation import metrics, reader_check
from engine.shapes import world


@pytest.fixture(scope="module")
def clips():
    return reader_check.uniform_clips(8, seed=5)


def test_uniform_clips_are_real_renders_of_their_factors(clips):
    frames, factors = clips
    assert frames.shape == (8, world.NUM_FRAMES, world.HEIGHT, world.WIDTH, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[3], world.render(factors[3]))


def test_blur_lowers_and_unsharp_masking_raises_sharpness(clips):
    frames, _ = clips
    s = metrics.sharpness(frames)
    assert metrics.sharpness(reader_check.blur(frames, 2.0)) < 0.6 * s
    assert metrics.sharpness(reader_check.sharpen(frames, 1.0)) > 1.2 * s
    flat = np.full((1, 2, 16, 16, 3), 90, np.uint8)
    assert np.array_equal(reader_check.blur(flat, 1.5), flat)  # a flat frame has nothing to blur


@pytest.mark.parametrize("ratio", [0.5, 1.6])
def test_match_sharpness_reaches_its_target(clips, ratio):
    frames, _ = clips
    target = ratio * metrics.sharpness(frames)
    out, how = reader_check.match_sharpness(frames, target)
    assert metrics.sharpness(out) == pytest.approx(target, rel=0.02)
    assert how.startswith("blur sigma" if ratio < 1 else "unsharp amount")


def test_saturation_shift_and_jpeg(clips):
    frames, _ = clips
    sat = metrics.colour_stats(frames)["saturation"]
    assert metrics.colour_stats(reader_check.saturate(frames, 0.5))["saturation"] < 0.7 * sat
    assert np.array_equal(reader_check.saturate(frames, 1.0), frames)
    blocked = reader_check.jpeg(frames[:1], 10)
    assert blocked.shape == frames[:1].shape and 0 < np.abs(blocked.astype(int) - frames[:1]).mean() < 20


def test_accuracy_counts_each_factor_and_names_the_worst_shape(clips):
    _, factors = clips
    truth = [f.discrete() for f in factors]
    wrong = [dict(t) for t in truth]
    wrong[0]["colour"] = next(c for c in world.COLOURS if c != truth[0]["colour"])
    out = reader_check.accuracy(wrong, factors)
    assert out["colour"] == 0.875 and out["shape"] == 1.0 and out["all_four"] == 0.875
    assert out["worst_shape"][1] == 1.0
    table = reader_check.to_markdown(
        {
            "rows": [
                {
                    "condition": "real",
                    "setting": "as rendered",
                    "sharpness_vs_decoded": 1.4,
                    "saturation_vs_real": 1.0,
                    **out,
                }
            ]
        }
    )
    assert "| real | as rendered | 1.40 | 1.00 | 1.000 | 0.875 |" in table


def test_the_template_reader_reads_real_clips_from_the_worlds_own_masks(clips):
    frames, factors = clips
    templates = reader_check._templates()
    read = [reader_check.template_shape(c, templates) for c in frames]
    assert [r[0] for r in read] == [f.shape for f in factors] and min(r[1] for r in read) > 0.8
    blurred = reader_check.blur(frames[:2], 2.5)  # far blurrier than any sample: the half-way mask holds
    assert [reader_check.template_shape(c, templates)[0] for c in blurred] == [f.shape for f in factors[:2]]
    blank = np.full((17, 64, 64, 3), 40, np.uint8)
    assert reader_check.template_shape(blank, templates)[1] == 0.0  # nothing to read: no overlap claimed
    assert not reader_check.object_mask(blank[0]).any()
