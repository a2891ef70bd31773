"""Seed lists as users type them."""

import pytest

from engine.config.seeds import parse_seeds


def test_numbers_ranges_and_lists():
    assert parse_seeds("3") == [3]
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("1, 4,9") == [1, 4, 9]
    assert parse_seeds("0-1,7") == [0, 1, 7]


@pytest.mark.parametrize(
    "text, message",
    [
        ("8-1", "end is before the start"),
        ("one", "bad seeds 'one'"),
        ("", "bad seeds"),
        ("0-100000", "too many seeds"),
        ("-3", "bad seeds"),
    ],
)
def test_bad_seed_lists_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)
