"""The study's intervals: paired t over training seeds, pinned on cases computed by hand."""

import pytest

from engine.evaluation import stats


def test_t_quantiles_are_the_tabulated_ones_and_need_two_values():
    assert stats.t_quantile(2) == 4.303 and stats.t_quantile(4) == 2.776 and stats.t_quantile(100) == 1.96
    with pytest.raises(ValueError, match="at least 2 values"):
        stats.t_quantile(0)


def test_an_interval_that_holds_zero_is_not_resolved():
    out = stats.t_interval([1.0, 2.0, 3.0, None])  # mean 2, sd 1: half-width 4.303 / sqrt(3) = 2.484
    assert out == {"mean": 2.0, "low": -0.4843, "high": 4.4843, "n": 3, "resolved": False}
    assert stats.t_interval([0.4])["resolved"] is False and stats.t_interval([0.4])["low"] is None


def test_paired_difference_uses_only_the_seeds_both_ran():
    diff = stats.paired_difference({0: 1.0, 1: 1.2, 2: 1.1, 3: 5.0}, {0: 0.5, 1: 0.6, 2: 0.55})
    assert diff["seeds"] == [0, 1, 2] and diff["mean"] == 0.55
    assert diff["low"] == pytest.approx(0.55 - 4.303 * 0.05 / 3**0.5, abs=1e-4) and diff["resolved"]
    assert stats.verdict(diff, "higher") == "better" and stats.verdict(diff, "lower") == "worse"
    assert stats.interval_text(diff) == "+0.550 [+0.426, +0.674]"


def test_against_a_reference_value_and_without_one():
    diff = stats.difference_from_value({0: 0.9, 1: 0.8}, 1.0)  # -0.1 and -0.2: mean -0.15, sd 0.0707, t 12.706
    assert diff["mean"] == -0.15 and not diff["resolved"] and stats.verdict(diff, "higher") == "not resolved"
    assert stats.difference_from_value({0: 0.9}, None)["mean"] is None
    assert stats.interval_text({"mean": None}) == "-" and stats.interval_text({"mean": 0.1, "low": None}) == "+0.100"


def test_equal_differences_on_every_seed_are_decided_by_the_sign_test_not_a_zero_width_interval():
    three = stats.paired_difference({0: 0.2, 1: 0.5, 2: 0.7}, {0: 0.3, 1: 0.6, 2: 0.8})  # -0.1 on each, to rounding
    assert three["mean"] == -0.1 and three["low"] is None and three["all_equal"] and not three["resolved"]
    assert stats.verdict(three, "higher") == "not resolved"  # p = 2 * 0.5^3 = 0.25
    assert stats.interval_text(three) == "-0.100 (the same on all 3 seeds: sign test)"
    assert not stats.t_interval([0.5] * 5)["resolved"]  # p = 0.0625
    six = stats.t_interval([0.5] * 6)  # p = 0.03125
    assert six["resolved"] and stats.verdict(six, "higher") == "better"
    assert not stats.t_interval([0.0] * 6)["resolved"]  # no difference at all


def test_student_t_tail_matches_the_printed_tables():
    # two-sided 5% points t(0.975, df) and one-sided 5% points t(0.95, df) of any t table
    assert 2 * stats.t_sf(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert 2 * stats.t_sf(2.776, 4) == pytest.approx(0.05, abs=1e-4)
    assert stats.t_sf(2.132, 4) == pytest.approx(0.05, abs=1e-4) and stats.one_sided_t_quantile(4) == 2.132
    assert stats.t_sf(1.0, 1) == pytest.approx(0.25, abs=1e-9)  # Cauchy: 1/2 - atan(1)/pi
    assert stats.t_sf(0.0, 7) == pytest.approx(0.5) and stats.t_sf(-1.0, 3) == pytest.approx(1 - stats.t_sf(1.0, 3))
    assert stats.one_sided_t_quantile(200) == 1.645
    with pytest.raises(ValueError, match="df >= 1"):
        stats.t_sf(1.0, 0)


def test_non_inferiority_is_the_one_sided_bound_beyond_minus_the_margin():
    # d = 0.1, -0.05, 0.02, 0, 0.03: mean 0.02, sd 0.054314, se 0.02429; bound 0.02 - 2.132 * se = -0.0318
    diffs = [0.1, -0.05, 0.02, 0.0, 0.03]
    out = stats.non_inferiority(diffs, margin=0.1)
    assert out["mean"] == 0.02 and out["bound"] == pytest.approx(0.02 - 2.132 * 0.054314 / 5**0.5, abs=1e-4)
    assert out["non_inferior"] and out["p"] == pytest.approx(stats.t_sf(0.12 / (0.054314 / 5**0.5), 4), abs=1e-4)
    assert not stats.non_inferiority(diffs, margin=0.02)["non_inferior"]  # the bound -0.032 is below -0.02
    # lower is better: the same differences are a loss of 0.02 on average
    worse = stats.non_inferiority(diffs, margin=0.05, better="lower")
    assert worse["mean"] == 0.02 and worse["bound"] == pytest.approx(0.02 + 2.132 * 0.054314 / 5**0.5, abs=1e-4)
    assert not worse["non_inferior"]  # 0.0718 > 0.05
    with pytest.raises(ValueError, match="margin must be positive"):
        stats.non_inferiority(diffs, margin=0)
    assert stats.non_inferiority([0.3], margin=0.1)["p"] is None  # one seed decides nothing


def test_equal_differences_fall_back_to_the_one_sided_sign_test():
    assert stats.non_inferiority([0.0] * 5, margin=0.05)["non_inferior"]  # 0.5^5 = 0.031
    assert not stats.non_inferiority([0.0] * 4, margin=0.05)["non_inferior"]  # 0.5^4 = 0.0625
    assert not stats.non_inferiority([-0.1] * 6, margin=0.05)["non_inferior"]  # every seed loses more than the margin


def test_equivalence_needs_the_whole_90_percent_interval_inside_the_margin():
    diffs = [0.1, -0.05, 0.02, 0.0, 0.03]  # 90% interval [-0.0318, 0.0718]
    out = stats.equivalence(diffs, margin=0.1)
    assert out["equivalent"] and out["low"] == -0.0318 and out["high"] == 0.0718
    assert not stats.equivalence(diffs, margin=0.05)["equivalent"]
    paired = stats.paired_non_inferiority({20: 0.9, 21: 0.8, 22: 0.85, 23: 0.7}, {20: 0.9, 21: 0.82, 22: 0.8}, 0.1)
    assert paired["seeds"] == [20, 21, 22] and paired["mean"] == pytest.approx(0.01, abs=1e-4)


def test_paired_t_p_values():
    # d = 1, 2, 3: t = 2 / (1 / sqrt 3) = 3.464 on 2 df; two-sided p = 0.0742 (any t table)
    assert stats.paired_t_p([1.0, 2.0, 3.0]) == pytest.approx(0.0742, abs=1e-4)
    assert stats.paired_t_p([1.0, 2.0, 3.0], "higher") == pytest.approx(0.0371, abs=1e-4)
    assert stats.paired_t_p([1.0, 2.0, 3.0], "lower") == pytest.approx(1 - 0.0371, abs=1e-4)
    assert stats.paired_t_p([0.5] * 6) == 0.03125 and stats.paired_t_p([1.0]) is None


def test_holm_adjusts_the_textbook_family():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    out = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": None})
    assert out == {"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02, "e": None}
    assert stats.holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def test_bootstrap_of_a_reference_is_reproducible_and_holds_its_mean():
    readings = {"p1": [1.0, 1.0, 0.0, 1.0], "p2": [0.0, 0.0, 1.0, 0.0], "p3": [1.0, 1.0, 1.0, 1.0], "p4": [0.5]}
    out = stats.bootstrap_mean(readings, draws=500, seed=3)
    assert out["mean"] == pytest.approx((0.75 + 0.25 + 1.0 + 0.5) / 4, abs=1e-4) and out["prompts"] == 4
    assert out["low"] < out["mean"] < out["high"] and out == stats.bootstrap_mean(readings, draws=500, seed=3)
    assert stats.bootstrap_mean({"p": [0.4, 0.4]})["low"] == 0.4  # no spread, no width
    assert stats.bootstrap_mean({})["mean"] is None


def test_clip_readings_rebuild_a_rows_fidelity_from_its_clips():
    row = {
        "clip_factors": [
            {"shape": "circle", "colour": "red", "motion": "left", "background": "dark"},
            {"shape": "square", "colour": "red", "motion": "left", "background": "dark"},
        ],
        "clip_saturation": [0.3, 0.2],
        "mode_tv": 0.4,
    }
    rows = {"a red circle moving left on a dark background": row, "": dict(row)}
    named = stats.clip_readings(rows, "all_named_correct")
    assert named == {"a red circle moving left on a dark background": [1.0, 0.0]}  # the empty prompt names nothing
    assert stats.clip_readings(rows, "prompt_fidelity")["a red circle moving left on a dark background"] == [1.0, 0.75]
    assert stats.clip_readings(rows, "saturation")[""] == [0.3, 0.2]
    assert stats.clip_readings(rows, "mode_tv", prompts=[""]) == {"": [0.4]}
