"""Unit tests of ledger.rewards: star levels, standings and title eligibility."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.rewards import (
    DEFAULT_STAR_THRESHOLD_HOURS,
    StarStanding,
    YearRecord,
    check_thresholds,
    party_requirement_met,
    standings,
    star_standing,
    title_eligibility,
)
from ledger.rulesets import Category, Label, PartyMemberRequirement, Title

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


# -- standings and title eligibility ---------------------------------------------------------


def test_ties_share_a_rank_and_the_next_rank_skips():
    ranked = standings([(1, 10, 5), (2, 20, 0), (3, 10, 9), (4, 5, 0)])
    assert [(s.participant_id, s.rank) for s in ranked] == [(2, 1), (3, 2), (1, 2), (4, 4)]


def test_within_a_tie_more_service_time_then_the_earlier_registration_comes_first():
    ranked = standings([(7, 10, 60), (3, 10, 60), (5, 10, 90)])
    assert [s.participant_id for s in ranked] == [5, 3, 7]


@given(st.dictionaries(st.integers(1, 500), st.tuples(st.integers(-50, 500), st.integers(0, 10_000)), max_size=60))
def test_a_rank_is_one_more_than_the_number_with_more_points(rows):
    ranked = standings((pid, points, minutes) for pid, (points, minutes) in rows.items())
    assert len(ranked) == len(rows)
    for standing in ranked:
        assert standing.rank == 1 + sum(1 for points, _ in rows.values() if points > standing.points)


EXCELLENT_VOLUNTEER = Title(
    code="excellent_volunteer",
    label=Label("优秀志愿者", "Excellent volunteer"),
    category=Category.VOLUNTEER,
    min_hours=50,
    min_points=300,
    min_activities=10,
    top_percent=10,
)


def year(**overrides) -> YearRecord:
    values = dict(
        participant_id=1,
        categories=frozenset({Category.VOLUNTEER}),
        points=320,
        service_minutes=50 * 60,
        activities=12,
        rank=3,
        ranked=40,
    )
    return YearRecord(**(values | overrides))


def test_a_volunteer_meeting_every_criterion_is_eligible_and_each_criterion_says_so():
    result = title_eligibility(EXCELLENT_VOLUNTEER, year())
    assert result.eligible
    assert [(c.criterion, c.required, c.achieved, c.met) for c in result.criteria] == [
        ("min_hours", 3000, 3000, True),
        ("min_points", 300, 320, True),
        ("min_activities", 10, 12, True),
        ("top_percent", 4, 3, True),
    ]


@pytest.mark.parametrize(
    ("overrides", "missed", "shortfall"),
    [
        ({"service_minutes": 2950}, "min_hours", 50),
        ({"points": 299}, "min_points", 1),
        ({"activities": 7}, "min_activities", 3),
        ({"rank": 5}, "top_percent", 1),
        ({"categories": frozenset({Category.PARTY_MEMBER})}, "category", 1),
    ],
)
def test_a_missed_criterion_is_named_with_how_much_was_missing(overrides, missed, shortfall):
    result = title_eligibility(EXCELLENT_VOLUNTEER, year(**overrides))
    assert not result.eligible
    [failed] = [c for c in result.criteria if not c.met]
    assert (failed.criterion, failed.shortfall) == (missed, shortfall)


def test_the_top_share_always_admits_at_least_the_first_place():
    lone = title_eligibility(EXCELLENT_VOLUNTEER, year(rank=1, ranked=3))
    assert [c.required for c in lone.criteria if c.criterion == "top_percent"] == [1]


def test_a_party_member_title_needs_the_yearly_requirement():
    title = Title(
        code="excellent_party_member",
        label=Label("优秀党员", "Excellent party member"),
        category=Category.PARTY_MEMBER,
        max_rank=10,
        requires_party_requirement=True,
    )
    member = dict(categories=frozenset({Category.PARTY_MEMBER}), rank=2)
    assert title_eligibility(title, year(**member, party_requirement_met=True)).eligible
    assert not title_eligibility(title, year(**member, party_requirement_met=False)).eligible


@pytest.mark.parametrize(
    ("activities", "minutes", "met"), [(4, 720, True), (3, 720, False), (4, 719, False), (9, 9000, True)]
)
def test_the_party_requirement_needs_both_activities_and_hours(activities, minutes, met):
    assert party_requirement_met(PartyMemberRequirement(min_activities=4, min_hours=12), activities, minutes) is met
