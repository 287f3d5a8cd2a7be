"""Unit tests of ledger.rewards: star levels from cumulative verified service minutes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.rewards import DEFAULT_STAR_THRESHOLD_HOURS, StarStanding, check_thresholds, star_standing

HOUR = 60


@pytest.mark.parametrize(
    ("minutes", "level", "next_level", "minutes_to_next"),
    [
        (0, 0, 1, 100 * HOUR),
        (1, 0, 1, 100 * HOUR - 1),
        (100 * HOUR - 1, 0, 1, 1),
        (100 * HOUR, 1, 2, 200 * HOUR),
        (300 * HOUR - 1, 1, 2, 1),
        (300 * HOUR, 2, 3, 300 * HOUR),
        (600 * HOUR, 3, 4, 400 * HOUR),
        (1000 * HOUR, 4, 5, 500 * HOUR),
        (1500 * HOUR - 1, 4, 5, 1),
        (1500 * HOUR, 5, None, None),
        (10**9, 5, None, None),
    ],
)
def test_default_thresholds_give_the_star_level_for_service_minutes(minutes, level, next_level, minutes_to_next):
    assert star_standing(minutes) == StarStanding(level, minutes, next_level, minutes_to_next)


@pytest.mark.parametrize(
    ("thresholds", "minutes", "expected"),
    [
        ((1, 2), 0, StarStanding(0, 0, 1, 60)),
        ((1, 2), 60, StarStanding(1, 60, 2, 60)),
        ((1, 2), 120, StarStanding(2, 120, None, None)),
        ([10], 599, StarStanding(0, 599, 1, 1)),
        ([10], 600, StarStanding(1, 600, None, None)),
        ((50, 200, 400), 12_000, StarStanding(2, 12_000, 3, 12_000)),
    ],
)
def test_custom_thresholds_replace_the_default_ones(thresholds, minutes, expected):
    assert star_standing(minutes, thresholds) == expected


def test_check_thresholds_returns_valid_thresholds_as_a_tuple():
    assert check_thresholds([100, 300, 600]) == (100, 300, 600)
    assert check_thresholds(DEFAULT_STAR_THRESHOLD_HOURS) == DEFAULT_STAR_THRESHOLD_HOURS


@pytest.mark.parametrize(
    ("thresholds", "field"),
    [
        pytest.param((100, 100), "star_levels[1]", id="equal"),
        pytest.param((300, 100), "star_levels[1]", id="decreasing"),
        pytest.param((100, 300, 300), "star_levels[2]", id="equal at the top"),
        pytest.param((0, 100), "star_levels[0]", id="zero"),
        pytest.param((-5,), "star_levels[0]", id="negative"),
        pytest.param((100, 2.5), "star_levels[1]", id="fraction"),
        pytest.param((100.0, 300), "star_levels[0]", id="integral float"),
        pytest.param((True, 5), "star_levels[0]", id="bool"),
        pytest.param(("100",), "star_levels[0]", id="text"),
        pytest.param((100, None), "star_levels[1]", id="None"),
    ],
)
@pytest.mark.parametrize(
    "check", [check_thresholds, lambda hours: star_standing(0, hours)], ids=["check_thresholds", "star_standing"]
)
def test_invalid_thresholds_are_refused_naming_the_level(check, thresholds, field):
    with pytest.raises(InvalidInput) as refusal:
        check(thresholds)
    assert refusal.value.field == field


@pytest.mark.parametrize("minutes", [-1, True, False, 1.0, 6000.0, "6000", None])
def test_invalid_service_minutes_are_refused(minutes):
    with pytest.raises(InvalidInput) as refusal:
        star_standing(minutes)
    assert refusal.value.field == "service_minutes"


threshold_lists = st.lists(st.integers(1, 5000), min_size=1, max_size=8, unique=True).map(sorted).map(tuple)
minutes = st.integers(0, 6000 * HOUR)


@given(threshold_lists, minutes, minutes)
def test_star_level_never_falls_as_service_minutes_grow(thresholds, first, second):
    low, high = sorted((first, second))
    assert star_standing(low, thresholds).level <= star_standing(high, thresholds).level


@given(threshold_lists, minutes)
def test_minutes_to_next_reach_exactly_the_next_threshold(thresholds, service):
    standing = star_standing(service, thresholds)
    if standing.next_level is None:
        assert standing.level == len(thresholds) and standing.minutes_to_next is None
        assert service >= thresholds[-1] * HOUR
        return
    assert standing.next_level == standing.level + 1
    assert standing.minutes_to_next > 0
    assert service + standing.minutes_to_next == thresholds[standing.level] * HOUR
    assert star_standing(service + standing.minutes_to_next, thresholds).level == standing.next_level
    assert star_standing(service + standing.minutes_to_next - 1, thresholds).level == standing.level
