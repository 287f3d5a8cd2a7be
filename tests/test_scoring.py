"""Unit tests of the scoring engine in ledger.points: recorded service in, explained integer points out.

Every case builds its rule set directly from the frozen values of :mod:`ledger.rulesets`. The
default case is a two-hour patrol on Wednesday 2026-03-04, 09:00–11:00 in Shanghai, at ten
points an hour: 20 points, 120 service minutes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.points import EarnedSoFar, Score, ServiceFacts, describe_breakdown, score_activity
from ledger.rulesets import (
    ActivityType,
    Calendar,
    Caps,
    Category,
    Combine,
    Label,
    Multipliers,
    NightWindow,
    Rounding,
    RuleSet,
    Unit,
)

SHANGHAI = "Asia/Shanghai"
UTC = dt.timezone.utc
#: The Spring Festival of 2026: nine days off, paid back on two Saturdays.
SPRING_FESTIVAL = Calendar(
    holidays=frozenset(dt.date(2026, 2, 15) + dt.timedelta(days=n) for n in range(9)),
    workdays=frozenset({dt.date(2026, 2, 14), dt.date(2026, 2, 28)}),
)
NIGHT = NightWindow(dt.time(22, 0), dt.time(6, 0), 150)


def at(local: str, zone: str = SHANGHAI) -> dt.datetime:
    """Return the aware moment of a wall-clock time in ``zone``."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))


def activity_type(**overrides) -> ActivityType:
    values = {"code": "patrol", "label": Label("巡逻", "Patrol"), "unit": Unit.HOUR, "points": 10} | overrides
    return ActivityType(**values)


def rule_set(kind: ActivityType | None = None, **parts) -> RuleSet:
    kind = kind or activity_type()
    values = {"effective_from": dt.date(2026, 1, 1), "effective_to": dt.date(2026, 12, 31)} | parts
    return RuleSet(name="test rules", activity_types={kind.code: kind}, **values)


def service(start: str = "2026-03-04T09:00", end: str = "2026-03-04T11:00", **overrides) -> ServiceFacts:
    values = {"activity_type": "patrol", "category": Category.VOLUNTEER, "time_zone": SHANGHAI} | overrides
    return ServiceFacts(started_at=at(start), ended_at=at(end), **values)


def service_between(start: dt.datetime, end: dt.datetime, zone: str = SHANGHAI) -> ServiceFacts:
    return ServiceFacts("patrol", Category.VOLUNTEER, start, end, time_zone=zone)


def steps_named(score: Score, name: str) -> list[dict]:
    return [step for step in score.breakdown["steps"] if step["step"] == name]


# Each rule kind, one row at a time ---------------------------------------------------------------

SATURDAY = {"start": "2026-03-07T09:00", "end": "2026-03-07T11:00"}


@pytest.mark.parametrize(
    ("kind", "rules", "facts", "earned", "points", "minutes"),
    [
        pytest.param({}, {}, {}, {}, 20, 120, id="per hour"),
        pytest.param({}, {}, {"end": "2026-03-04T09:50"}, {}, 8, 50, id="per hour floors a fraction of a point"),
        pytest.param({"unit": Unit.OCCURRENCE, "points": 5}, {}, {}, {}, 5, 120, id="per occurrence"),
        pytest.param(
            {"unit": Unit.QUANTITY, "points": 10, "per_quantity": 100}, {}, {"quantity": 350}, {}, 35, 120,
            id="per quantity floors to whole multiples of per_quantity",
        ),
        pytest.param(
            {"unit": Unit.QUANTITY, "points": 3, "counts_as_service": False}, {}, {"quantity": 4}, {}, 12, 0,
            id="a type that is not service adds no service minutes",
        ),
        pytest.param({"min_minutes": 30}, {}, {"end": "2026-03-04T09:29"}, {}, 0, 0, id="shorter than the minimum"),
        pytest.param({"min_minutes": 30}, {}, {"end": "2026-03-04T09:30"}, {}, 5, 30, id="exactly the minimum"),
        pytest.param({"round_to_minutes": 30}, {}, {"end": "2026-03-04T10:50"}, {}, 15, 90, id="rounding down"),
        pytest.param(
            {"round_to_minutes": 30, "rounding": Rounding.NEAREST}, {}, {"end": "2026-03-04T10:44"}, {}, 15, 90,
            id="rounding to the nearest below the half",
        ),
        pytest.param(
            {"round_to_minutes": 30, "rounding": Rounding.NEAREST}, {}, {"end": "2026-03-04T10:45"}, {}, 20, 120,
            id="rounding to the nearest rounds a half up",
        ),
        pytest.param(
            {"round_to_minutes": 30, "rounding": Rounding.UP}, {}, {"end": "2026-03-04T10:31"}, {}, 20, 120,
            id="rounding up",
        ),
        pytest.param({"travel_counts": True}, {}, {"travel_minutes": 30}, {}, 25, 150, id="travel counted"),
        pytest.param({}, {}, {"travel_minutes": 30}, {}, 20, 120, id="travel not counted by default"),
        pytest.param(
            {"min_minutes": 60, "travel_counts": True}, {}, {"end": "2026-03-04T09:40", "travel_minutes": 20}, {}, 10,
            60, id="counted travel helps reach the minimum",
        ),
        pytest.param({}, {"multipliers": Multipliers(weekend_percent=150)}, SATURDAY, {}, 30, 120, id="weekend"),
        pytest.param(
            {}, {"multipliers": Multipliers(holiday_percent=200), "calendar": SPRING_FESTIVAL},
            {"start": "2026-02-17T09:00", "end": "2026-02-17T11:00"}, {}, 40, 120, id="holiday on a weekday",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=150), "calendar": SPRING_FESTIVAL},
            {"start": "2026-02-14T09:00", "end": "2026-02-14T11:00"}, {}, 20, 120,
            id="a make-up workday on a Saturday is not a weekend",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=300, holiday_percent=200), "calendar": SPRING_FESTIVAL},
            {"start": "2026-02-15T09:00", "end": "2026-02-15T11:00"}, {}, 40, 120,
            id="a holiday on a Sunday is a holiday only, even when weekends pay more",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=150)},
            {"start": "2026-03-06T23:00", "end": "2026-03-07T01:00"}, {}, 20, 120,
            id="service starting on Friday night belongs to Friday",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(night=NIGHT)}, {"start": "2026-03-04T23:00", "end": "2026-03-05T03:00"},
            {}, 60, 240, id="night window crossing midnight",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(night=NIGHT)}, {"start": "2026-03-04T20:00", "end": "2026-03-05T00:00"},
            {}, 60, 240, id="night for exactly half of the time counts as night",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(night=NIGHT)}, {"start": "2026-03-04T19:00", "end": "2026-03-04T23:00"},
            {}, 40, 240, id="night for less than half of the time does not",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(night=NIGHT)}, {"start": "2026-03-04T05:00", "end": "2026-03-04T07:00"},
            {}, 30, 120, id="the early morning end of the night window",
        ),
        pytest.param(
            {"travel_counts": True}, {"multipliers": Multipliers(night=NIGHT)},
            {"start": "2026-03-04T21:00", "end": "2026-03-04T23:00", "travel_minutes": 120}, {}, 60, 240,
            id="the night half-rule looks at the service time, not travel",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(tags={"emergency": 200})}, {"tags": frozenset({"emergency"})}, {}, 40, 120,
            id="emergency tag",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(tags={"emergency": 200})}, {"tags": frozenset({"flood"})}, {}, 20, 120,
            id="a tag without a multiplier changes nothing",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(categories={Category.PARTY_MEMBER: 120})},
            {"category": Category.PARTY_MEMBER}, {}, 24, 120, id="category percent",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(categories={Category.PARTY_MEMBER: 120})}, {}, {}, 20, 120,
            id="another category's percent does not apply",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=150, tags={"emergency": 200})},
            SATURDAY | {"tags": frozenset({"emergency"})}, {}, 40, 120, id="highest: only the largest applies",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=150, tags={"emergency": 200}, combine=Combine.MULTIPLY)},
            SATURDAY | {"tags": frozenset({"emergency"})}, {}, 60, 120, id="multiply: each applies in turn",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(weekend_percent=50)}, SATURDAY, {}, 10, 120,
            id="a multiplier below 100 percent reduces",
        ),
        pytest.param({}, {"caps": Caps(points_per_activity=15)}, {}, {}, 15, 120, id="per-activity cap"),
        pytest.param(
            {"max_points": 12}, {"caps": Caps(points_per_activity=15)}, {}, {}, 12, 120, id="type max_points",
        ),
        pytest.param(
            {"max_points": 30}, {"caps": Caps(points_per_activity=15)}, {}, {}, 20, 120,
            id="type max_points replaces the rule set's per-activity cap",
        ),
        pytest.param(
            {}, {"caps": Caps(hours_per_day=8)}, {}, {"day_minutes": 420}, 10, 60,
            id="hours per day with earlier minutes that day",
        ),
        pytest.param(
            {}, {"caps": Caps(hours_per_day=8)}, {}, {"day_minutes": 480}, 0, 0, id="hours per day already used up",
        ),
        pytest.param({}, {"caps": Caps(points_per_month=300)}, {}, {"month_points": 290}, 10, 120, id="month cap"),
        pytest.param({}, {"caps": Caps(points_per_year=1000)}, {}, {"year_points": 995}, 5, 120, id="year cap"),
        pytest.param(
            {}, {"caps": Caps(points_per_month=300, points_per_year=1000)}, {},
            {"month_points": 250, "year_points": 990}, 10, 120, id="the tighter of month and year wins",
        ),
        pytest.param(
            {}, {"caps": Caps(points_per_month=300)}, {}, {"month_points": 350}, 0, 120,
            id="never below zero when the month was already over its cap",
        ),
        pytest.param({"points": 0}, {}, {}, {}, 0, 120, id="a type worth nothing still counts service time"),
    ],
)
def test_each_rule_kind_gives_the_expected_points_and_service_minutes(kind, rules, facts, earned, points, minutes):
    score = score_activity(service(**facts), rule_set(activity_type(**kind), **rules), EarnedSoFar(**earned))
    assert (score.points, score.service_minutes) == (points, minutes)
    assert score.breakdown["points"] == points and score.breakdown["service_minutes"] == minutes


def test_the_breakdown_lists_the_inputs_and_each_step_that_produced_a_number():
    rules = rule_set(
        activity_type(round_to_minutes=30),
        multipliers=Multipliers(weekend_percent=150),
        caps=Caps(points_per_month=300),
    )
    score = score_activity(service("2026-03-07T09:00", "2026-03-07T11:30"), rules, EarnedSoFar(month_points=290))
    assert score.breakdown == {
        "inputs": {
            "activity_type": "patrol",
            "category": "volunteer",
            "local_start": "2026-03-07T09:00",
            "local_end": "2026-03-07T11:30",
            "time_zone": SHANGHAI,
            "business_date": "2026-03-07",
            "travel_minutes": 0,
            "quantity": None,
            "tags": [],
            "day_kind": "weekend",
            "night_minutes": 0,
            "combine": "highest",
            "multipliers": [{"reason": "weekend", "percent": 150}],
            "earned_before": {"day_minutes": 0, "month_points": 290, "year_points": 0},
        },
        "steps": [
            {"step": "minutes", "duration_minutes": 150, "travel_minutes": 0, "minutes": 150},
            {"step": "round_minutes", "to": 30, "mode": "down", "minutes": 150},
            {"step": "base", "unit": "hour", "rate": 10, "minutes": 150, "points": 25},
            {"step": "multiplier", "reason": "weekend", "percent": 150, "points": 37},
            {"step": "cap_month", "limit": 300, "earned_before": 290, "points": 10},
        ],
        "points": 10,
        "service_minutes": 150,
    }
    assert score.business_date == dt.date(2026, 3, 7)


def test_below_the_minimum_scoring_stops_with_nothing_earned():
    score = score_activity(service(end="2026-03-04T09:20"), rule_set(activity_type(min_minutes=30)), EarnedSoFar())
    assert [step["step"] for step in score.breakdown["steps"]] == ["minutes", "below_minimum"]
    [below] = steps_named(score, "below_minimum")
    assert below == {"step": "below_minimum", "min_minutes": 30, "minutes": 20, "points": 0}


def test_a_holiday_on_a_weekend_is_applied_as_a_holiday_and_never_as_a_weekend_too():
    multipliers = Multipliers(weekend_percent=150, holiday_percent=200, combine=Combine.MULTIPLY)
    rules = rule_set(multipliers=multipliers, calendar=SPRING_FESTIVAL)
    score = score_activity(service("2026-02-15T09:00", "2026-02-15T11:00"), rules, EarnedSoFar())
    assert score.breakdown["inputs"]["day_kind"] == "holiday"
    assert [step["reason"] for step in steps_named(score, "multiplier")] == ["holiday"]


def test_weekend_holiday_and_night_reward_service_time_only_not_a_units_bookkeeping():
    agreement = activity_type(
        code="unit_agreement", unit=Unit.OCCURRENCE, points=100, categories=frozenset({Category.UNIT}), counts_as_service=False
    )
    multipliers = Multipliers(holiday_percent=150, night=NIGHT, tags={"emergency": 200})
    rules = rule_set(agreement, multipliers=multipliers, calendar=SPRING_FESTIVAL)
    facts = service("2026-02-16T23:00", "2026-02-17T01:00", activity_type="unit_agreement", category=Category.UNIT)
    assert score_activity(facts, rules, EarnedSoFar()).points == 100
    tagged = dataclasses.replace(facts, tags=frozenset({"emergency"}))
    assert score_activity(tagged, rules, EarnedSoFar()).points == 200


def test_the_month_and_year_caps_are_per_person_and_leave_units_alone():
    donation = activity_type(
        code="unit_donation", unit=Unit.QUANTITY, points=1, per_quantity=100, categories=frozenset({Category.UNIT}), counts_as_service=False
    )
    rules = rule_set(donation, caps=Caps(points_per_month=300, points_per_year=2400))
    facts = service(activity_type="unit_donation", category=Category.UNIT, quantity=50_000)
    score = score_activity(facts, rules, EarnedSoFar(month_points=290, year_points=2390))
    assert score.points == 500 and not steps_named(score, "cap_month")


def test_multiply_applies_day_kind_night_sorted_tags_then_category_flooring_each_time():
    multipliers = Multipliers(
        weekend_percent=150,
        night=NIGHT,
        tags={"emergency": 200, "cold": 110},
        categories={Category.PARTY_MEMBER: 105},
        combine=Combine.MULTIPLY,
    )
    facts = service(
        "2026-03-07T22:00", "2026-03-07T22:50", category=Category.PARTY_MEMBER, tags=frozenset({"emergency", "cold"})
    )
    score = score_activity(facts, rule_set(multipliers=multipliers), EarnedSoFar())
    applied = [(step.get("tag") or step["reason"], step["points"]) for step in steps_named(score, "multiplier")]
    # 8 → ×1.5 = 12 → ×1.5 = 18 → cold ×1.1 = 19 (19.8) → emergency ×2 = 38 → ×1.05 = 39 (39.9)
    assert applied == [("weekend", 12), ("night", 18), ("cold", 19), ("emergency", 38), ("category", 39)]
    assert score.points == 39


def test_highest_keeps_the_first_of_equal_multipliers_in_the_fixed_order():
    rules = rule_set(multipliers=Multipliers(weekend_percent=200, tags={"emergency": 200}))
    score = score_activity(service(**SATURDAY, tags=frozenset({"emergency"})), rules, EarnedSoFar())
    assert [step["reason"] for step in steps_named(score, "multiplier")] == ["weekend"]
    assert [candidate["reason"] for candidate in score.breakdown["inputs"]["multipliers"]] == ["weekend", "tag"]


def test_a_multiplier_of_exactly_100_percent_is_ignored():
    rules = rule_set(multipliers=Multipliers(weekend_percent=100, categories={Category.VOLUNTEER: 100}))
    score = score_activity(service(**SATURDAY), rules, EarnedSoFar())
    assert steps_named(score, "multiplier") == [] and score.breakdown["inputs"]["multipliers"] == []


@pytest.mark.parametrize(("night", "minutes"), [(None, 0), (NIGHT, 210)], ids=["no night window", "22:00 to 06:00"])
def test_the_night_minutes_are_recorded_from_the_local_wall_clock(night, minutes):
    rules = rule_set(multipliers=Multipliers(night=night))
    score = score_activity(service("2026-03-04T21:00", "2026-03-05T01:30"), rules, EarnedSoFar())
    assert score.breakdown["inputs"]["night_minutes"] == minutes


def test_caps_that_do_not_bind_leave_no_step():
    rules = rule_set(caps=Caps(hours_per_day=8, points_per_activity=50, points_per_month=300, points_per_year=1000))
    score = score_activity(service(), rule_set(), EarnedSoFar())
    assert score_activity(service(), rules, EarnedSoFar(10, 10, 10)).breakdown["steps"] == score.breakdown["steps"]
    assert [step["step"] for step in score.breakdown["steps"]] == ["minutes", "base"]


def test_an_activity_of_exactly_24_hours_is_accepted():
    score = score_activity(service("2026-03-04T09:00", "2026-03-05T09:00"), rule_set(), EarnedSoFar())
    assert (score.points, score.service_minutes) == (240, 1440)


def test_elapsed_time_is_counted_across_a_daylight_saving_change():
    zone = "America/New_York"  # on 2026-03-08 the clocks jump from 02:00 to 03:00
    facts = service_between(at("2026-03-08T01:00", zone), at("2026-03-08T03:00", zone), zone)
    score = score_activity(facts, rule_set(), EarnedSoFar())
    assert score.service_minutes == 60 and score.breakdown["inputs"]["local_end"] == "2026-03-08T03:00"


def test_the_business_date_is_the_local_date_of_the_start():
    facts = service_between(dt.datetime(2026, 11, 30, 16, 30, tzinfo=UTC), dt.datetime(2026, 11, 30, 18, tzinfo=UTC))
    score = score_activity(facts, rule_set(), EarnedSoFar())
    assert score.business_date == dt.date(2026, 12, 1)
    assert score.breakdown["inputs"]["local_start"] == "2026-12-01T00:30"


def test_local_times_show_seconds_only_when_there_are_some():
    score = score_activity(service("2026-03-04T09:00:30", "2026-03-04T10:00"), rule_set(), EarnedSoFar())
    assert score.breakdown["inputs"]["local_start"] == "2026-03-04T09:00:30"
    assert score.breakdown["steps"][0]["minutes"] == 59


# Refusals --------------------------------------------------------------------------------------

UNITS_AND_MEMBERS = {"categories": frozenset({Category.VOLUNTEER, Category.PARTY_MEMBER})}
DONATION = {"unit": Unit.QUANTITY, "points": 1, "per_quantity": 100}


@pytest.mark.parametrize(
    ("kind", "facts", "earned", "field"),
    [
        pytest.param({}, {"activity_type": "juggling"}, {}, "activity_type", id="unknown activity type"),
        pytest.param({}, {"activity_type": 7}, {}, "activity_type", id="activity type that is not text"),
        pytest.param(UNITS_AND_MEMBERS, {"category": Category.UNIT}, {}, "activity_type", id="category not allowed"),
        pytest.param({}, {"category": "resident"}, {}, "category", id="unknown category"),
        pytest.param({}, {"end": "2026-03-04T09:00"}, {}, "ended_at", id="ends when it starts"),
        pytest.param({}, {"end": "2026-03-04T08:00"}, {}, "ended_at", id="ends before it starts"),
        pytest.param({}, {"end": "2026-03-05T09:01"}, {}, "ended_at", id="longer than 24 hours"),
        pytest.param({}, {"started_at": dt.datetime(2026, 3, 4, 9)}, {}, "started_at", id="naive start"),
        pytest.param({}, {"ended_at": dt.datetime(2026, 3, 4, 11)}, {}, "ended_at", id="naive end"),
        pytest.param({}, {"started_at": "2026-03-04T09:00+08:00"}, {}, "started_at", id="start as text"),
        pytest.param({}, {"started_at": dt.date(2026, 3, 4)}, {}, "started_at", id="start as a date"),
        pytest.param({}, {"time_zone": "Mars/Olympus_Mons"}, {}, "time_zone", id="unknown time zone"),
        pytest.param({}, {"time_zone": "localtime"}, {}, "time_zone", id="the server's local time"),
        pytest.param({}, {"time_zone": None}, {}, "time_zone", id="no time zone"),
        pytest.param({}, {"travel_minutes": -1}, {}, "travel_minutes", id="negative travel"),
        pytest.param({}, {"travel_minutes": True}, {}, "travel_minutes", id="travel as bool"),
        pytest.param({}, {"travel_minutes": 1.5}, {}, "travel_minutes", id="travel as float"),
        pytest.param(DONATION, {}, {}, "quantity", id="quantity type without a quantity"),
        pytest.param(DONATION, {"quantity": 0}, {}, "quantity", id="zero quantity"),
        pytest.param(DONATION, {"quantity": -100}, {}, "quantity", id="negative quantity"),
        pytest.param(DONATION, {"quantity": True}, {}, "quantity", id="quantity as bool"),
        pytest.param(DONATION, {"quantity": 100.0}, {}, "quantity", id="quantity as float"),
        pytest.param({}, {"quantity": 3}, {}, "quantity", id="quantity for an hourly type"),
        pytest.param({}, {"tags": "emergency"}, {}, "tags", id="tags as one string"),
        pytest.param({}, {"tags": frozenset({1})}, {}, "tags", id="tag that is not text"),
        pytest.param({}, {}, {"day_minutes": -1}, "earned.day_minutes", id="negative earlier minutes"),
        pytest.param({}, {}, {"month_points": False}, "earned.month_points", id="earlier month points as bool"),
        pytest.param({}, {}, {"year_points": 2.0}, "earned.year_points", id="earlier year points as float"),
        pytest.param(
            {}, {"start": "2027-01-01T00:30", "end": "2027-01-01T02:00"}, {}, "started_at",
            id="after the rule set's period",
        ),
        pytest.param(
            {}, {"start": "2025-12-31T23:30", "end": "2026-01-01T01:00"}, {}, "started_at",
            id="starting the local day before the rule set's period",
        ),
    ],
)
def test_refusals_name_the_field_at_fault(kind, facts, earned, field):
    times = {name: value for name, value in facts.items() if name in ("start", "end")}
    fields = {name: value for name, value in facts.items() if name not in times}
    recorded = dataclasses.replace(service(**times), **fields)
    with pytest.raises(InvalidInput) as refusal:
        score_activity(recorded, rule_set(activity_type(**kind)), EarnedSoFar(**earned))
    assert refusal.value.field == field


def test_a_category_refusal_says_which_categories_may_use_the_type():
    with pytest.raises(InvalidInput, match="party_member, volunteer") as refusal:
        score_activity(service(category=Category.UNIT), rule_set(activity_type(**UNITS_AND_MEMBERS)), EarnedSoFar())
    assert refusal.value.field == "activity_type"


def test_the_rule_period_is_judged_by_the_local_date_not_the_utc_date():
    # 2027-01-01 00:30 in Shanghai, after the rules end on 2026-12-31.
    facts = service_between(dt.datetime(2026, 12, 31, 16, 30, tzinfo=UTC), dt.datetime(2026, 12, 31, 18, tzinfo=UTC))
    with pytest.raises(InvalidInput) as refusal:
        score_activity(facts, rule_set(), EarnedSoFar())
    assert refusal.value.field == "started_at"


# Describing a breakdown ------------------------------------------------------------------------

#: Saturday, three hours and twenty minutes of travel, every cap binding in turn.
EVERY_STEP = (
    service("2026-03-07T09:00", "2026-03-07T12:00", travel_minutes=20, tags=frozenset({"emergency"})),
    rule_set(
        activity_type(points=60, round_to_minutes=30, rounding=Rounding.NEAREST, travel_counts=True),
        multipliers=Multipliers(weekend_percent=150, tags={"emergency": 200}, combine=Combine.MULTIPLY),
        caps=Caps(hours_per_day=4, points_per_activity=500, points_per_month=1000, points_per_year=5000),
    ),
    EarnedSoFar(day_minutes=60, month_points=600, year_points=4700),
)


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        pytest.param(
            "zh",
            [
                "服务时长 180 分钟 + 路途 20 分钟 = 200 分钟",
                "按 30 分钟四舍五入：210 分钟",
                "每日上限 4 小时（当天此前已计 60 分钟）：180 分钟",
                "基础积分：每小时 60 分 × 180 分钟 = 180 分",
                "周末 ×150%：270 分",
                "应急 ×200%：540 分",
                "单次上限 500 分：500 分",
                "本月上限 1000 分（此前已得 600 分）：400 分",
                "本年上限 5000 分（此前已得 4700 分）：300 分",
            ],
            id="zh",
        ),
        pytest.param(
            "en",
            [
                "Service time 180 min + travel 20 min = 200 min",
                "Rounded to the nearest 30 min: 210 min",
                "Daily cap 4 h (60 min earlier that day): 180 min",
                "Base: 60 points an hour × 180 min = 180",
                "Weekend ×150%: 270",
                "Emergency ×200%: 540",
                "Per-activity cap 500: 500",
                "Monthly cap 1000 (600 earned before): 400",
                "Yearly cap 5000 (4700 earned before): 300",
            ],
            id="en",
        ),
    ],
)
def test_describe_breakdown_gives_one_readable_line_per_step(language, lines):
    score = score_activity(*EVERY_STEP)
    assert (score.points, score.service_minutes) == (300, 180)
    assert describe_breakdown(score.breakdown, language) == lines


def test_describe_breakdown_speaks_chinese_by_default():
    score = score_activity(*EVERY_STEP)
    assert describe_breakdown(score.breakdown) == describe_breakdown(score.breakdown, "zh")


@pytest.mark.parametrize(
    ("kind", "rules", "facts", "zh", "en"),
    [
        pytest.param(
            {"unit": Unit.OCCURRENCE, "points": 5}, {}, {}, "基础积分：每次 5 分", "Base: 5 points an occurrence",
            id="per occurrence",
        ),
        pytest.param(
            DONATION | {"points": 10}, {}, {"quantity": 350}, "基础积分：每 100 计 10 分 × 数量 350 = 35 分",
            "Base: 10 points per 100 × quantity 350 = 35", id="per quantity",
        ),
        pytest.param(
            {"min_minutes": 30}, {}, {"end": "2026-03-04T09:20"}, "20 分钟不足最短时长 30 分钟：0 分",
            "20 min is below the 30 min minimum: 0", id="below the minimum",
        ),
        pytest.param(
            {"round_to_minutes": 15, "rounding": Rounding.UP}, {}, {"end": "2026-03-04T09:50"}, "按 15 分钟向上取整：60 分钟",
            "Rounded up to 15 min: 60 min", id="rounded up",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(night=NIGHT)}, {"start": "2026-03-04T22:00", "end": "2026-03-05T00:00"},
            "夜间 ×150%：30 分", "Night ×150%: 30", id="night",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(holiday_percent=200), "calendar": SPRING_FESTIVAL},
            {"start": "2026-02-17T09:00", "end": "2026-02-17T11:00"}, "节假日 ×200%：40 分", "Holiday ×200%: 40",
            id="holiday",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(tags={"flood": 120})}, {"tags": frozenset({"flood"})},
            "标签 flood ×120%：24 分", "Tag flood ×120%: 24", id="a tag without a known name",
        ),
        pytest.param(
            {}, {"multipliers": Multipliers(categories={Category.UNIT: 110})}, {"category": Category.UNIT},
            "共建单位 ×110%：22 分", "Co-building unit ×110%: 22", id="category",
        ),
    ],
)
def test_describe_breakdown_names_each_kind_of_step_in_both_languages(kind, rules, facts, zh, en):
    score = score_activity(service(**facts), rule_set(activity_type(**kind), **rules), EarnedSoFar())
    assert zh in describe_breakdown(score.breakdown, "zh")
    assert en in describe_breakdown(score.breakdown, "en")


def test_describe_breakdown_refuses_an_unknown_language():
    with pytest.raises(InvalidInput) as refusal:
        describe_breakdown(score_activity(*EVERY_STEP).breakdown, "fr")
    assert refusal.value.field == "language"


def test_describe_breakdown_refuses_a_step_it_does_not_know():
    breakdown = score_activity(service(), rule_set(), EarnedSoFar()).breakdown
    breakdown["steps"].append({"step": "bonus", "points": 100})
    with pytest.raises(InvalidInput) as refusal:
        describe_breakdown(breakdown)
    assert refusal.value.field == "breakdown.steps[2].step"


# Properties --------------------------------------------------------------------------------------

ZONES = ("Asia/Shanghai", "Asia/Urumqi", "America/New_York", "UTC")
PERCENTS = st.integers(0, 300)
minutes_of_day = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
optional_limit = st.none() | st.integers(0, 2000)


def calendars(first: dt.date = dt.date(2026, 1, 1), days: int = 365) -> st.SearchStrategy[Calendar]:
    """Calendars whose holidays and make-up workdays fall on any days of the span, overlapping at will."""
    dates = st.dates(first, first + dt.timedelta(days=days - 1))
    return st.builds(Calendar, st.frozensets(dates, max_size=20), st.frozensets(dates, max_size=20))


@st.composite
def rule_sets(draw, *, capped: bool = True, night: bool = True, calendar=calendars()) -> RuleSet:
    unit = draw(st.sampled_from(Unit))
    kind = activity_type(
        unit=unit,
        points=draw(st.integers(0, 100)),
        per_quantity=draw(st.integers(1, 100)),
        min_minutes=draw(st.sampled_from((0, 10, 30, 60))),
        round_to_minutes=draw(st.integers(1, 60)),
        rounding=draw(st.sampled_from(Rounding)),
        travel_counts=draw(st.booleans()),
        max_points=draw(optional_limit) if capped else None,
        counts_as_service=draw(st.booleans()),
    )
    multipliers = Multipliers(
        weekend_percent=draw(PERCENTS),
        holiday_percent=draw(PERCENTS),
        night=draw(st.none() | st.builds(NightWindow, minutes_of_day, minutes_of_day, PERCENTS)) if night else None,
        tags=draw(st.dictionaries(st.sampled_from(["emergency", "flood", "cold"]), PERCENTS)),
        categories=draw(st.dictionaries(st.sampled_from(Category), PERCENTS)),
        combine=draw(st.sampled_from(Combine)),
    )
    hours = st.none() | st.integers(0, 24)
    caps = Caps(draw(hours), *(draw(optional_limit) for _ in range(3))) if capped else Caps()
    period = {"effective_from": dt.date(2025, 1, 1), "effective_to": None}  # wider than any zone's view of 2026
    return rule_set(kind, multipliers=multipliers, calendar=draw(calendar), caps=caps, **period)


@st.composite
def activities(draw, rules: RuleSet, *, first: dt.date = dt.date(2026, 1, 1), days: int = 365) -> ServiceFacts:
    """Activities the rule set accepts: of its type, starting within the span, up to 24 hours long."""
    kind = next(iter(rules.activity_types.values()))
    start = dt.datetime.combine(first, dt.time(), UTC) + dt.timedelta(seconds=draw(st.integers(0, days * 86400 - 1)))
    return ServiceFacts(
        kind.code,
        draw(st.sampled_from(Category)),
        start,
        start + dt.timedelta(seconds=draw(st.integers(1, 24 * 3600))),
        time_zone=draw(st.sampled_from(ZONES)),
        travel_minutes=draw(st.integers(0, 180)),
        quantity=draw(st.integers(1, 10_000)) if kind.unit is Unit.QUANTITY else None,
        tags=draw(st.frozensets(st.sampled_from(["emergency", "flood", "cold", "rain"]))),
    )


earlier = st.builds(EarnedSoFar, st.integers(0, 1500), st.integers(0, 2500), st.integers(0, 2500))


@st.composite
def scored_cases(draw, **rule_options) -> tuple[ServiceFacts, RuleSet, EarnedSoFar]:
    rules = draw(rule_sets(**rule_options))
    return draw(activities(rules)), rules, draw(earlier)


def json_types_only(value: object) -> bool:
    """Tell whether ``value`` is built of dict (with ASCII text keys), list, str, int, bool and None alone."""
    if isinstance(value, dict):
        return all(type(key) is str and key.isascii() and json_types_only(item) for key, item in value.items())
    if isinstance(value, list):
        return all(json_types_only(item) for item in value)
    return value is None or type(value) in (str, int, bool)


@given(scored_cases())
def test_caps_are_never_exceeded_and_nothing_is_ever_negative(case):
    facts, rules, earned = case
    score = score_activity(facts, rules, earned)
    assert score.points >= 0 and score.service_minutes >= 0
    caps, kind = rules.caps, rules.activity_types[facts.activity_type]
    per_person = facts.category is not Category.UNIT  # the month and year caps leave units alone
    for limit, before, used in (
        (caps.points_per_month if per_person else None, earned.month_points, score.points),
        (caps.points_per_year if per_person else None, earned.year_points, score.points),
        (None if caps.hours_per_day is None else caps.hours_per_day * 60, earned.day_minutes, score.service_minutes),
    ):
        if limit is not None and before <= limit:
            assert before + used <= limit
    activity_limit = caps.points_per_activity if kind.max_points is None else kind.max_points
    assert activity_limit is None or score.points <= activity_limit


@given(scored_cases(capped=False, night=False), st.integers(0, 24 * 3600))
def test_points_and_minutes_never_fall_as_the_same_activity_lasts_longer(case, more_seconds):
    facts, rules, earned = case
    longest_end = facts.started_at + dt.timedelta(days=1)
    longer = dataclasses.replace(facts, ended_at=min(facts.ended_at + dt.timedelta(seconds=more_seconds), longest_end))
    shorter_score, longer_score = score_activity(facts, rules, earned), score_activity(longer, rules, earned)
    assert shorter_score.points <= longer_score.points
    assert shorter_score.service_minutes <= longer_score.service_minutes


@given(scored_cases(), st.sampled_from(ZONES))
def test_scoring_is_deterministic_whatever_zone_the_moments_are_given_in(case, shown_in):
    facts, rules, earned = case
    first = score_activity(facts, rules, earned)
    again = score_activity(facts, rules, earned)
    zone = ZoneInfo(shown_in)
    elsewhere = dataclasses.replace(
        facts, started_at=facts.started_at.astimezone(zone), ended_at=facts.ended_at.astimezone(zone)
    )
    assert first == again == score_activity(elsewhere, rules, earned)


@given(scored_cases())
def test_the_breakdown_is_plain_json_and_survives_a_round_trip(case):
    breakdown = score_activity(*case).breakdown
    assert json_types_only(breakdown)
    assert json.loads(json.dumps(breakdown)) == breakdown
    for language in ("zh", "en"):
        assert len(describe_breakdown(breakdown, language)) == len(breakdown["steps"])


@given(st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 30)))
def test_the_business_date_in_shanghai_is_the_utc_date_eight_hours_later(start):
    start = start.replace(tzinfo=UTC)
    score = score_activity(service_between(start, start + dt.timedelta(hours=1)), rule_set(), EarnedSoFar())
    assert score.business_date == (start + dt.timedelta(hours=8)).date()


@given(st.data())
def test_holidays_and_make_up_workdays_decide_the_day_multiplier(data):
    """Over generated calendars: a holiday is never a weekend, and a make-up workday never gets the weekend rate."""
    rules = data.draw(rule_sets(calendar=calendars(dt.date(2026, 2, 1), days=28)))
    facts = data.draw(activities(rules, first=dt.date(2026, 2, 1), days=27))
    score = score_activity(facts, rules, EarnedSoFar())
    day, calendar = score.business_date, rules.calendar
    day_kind = score.breakdown["inputs"]["day_kind"]
    reasons = {step["reason"] for step in steps_named(score, "multiplier")}
    if day in calendar.holidays:
        assert day_kind == "holiday" and "weekend" not in reasons
    elif day in calendar.workdays or day.weekday() < 5:
        assert day_kind == "workday" and not reasons & {"weekend", "holiday"}
    else:
        assert day_kind == "weekend" and "holiday" not in reasons
