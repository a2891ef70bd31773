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
    assert diff["low"] == pytest.approx(0.55 - 4.303 * 0.05 / 3 ** 0.5, abs=1e-4) and diff["resolved"]
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
