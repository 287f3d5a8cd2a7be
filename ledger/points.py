"""Points: integer amounts and the legs of a double-entry transaction, as pure values.

A transaction moves points between accounts in legs. The legs of one transaction touch each
account at most once, carry non-zero integer amounts within :data:`MAX_POSTING_AMOUNT`, and
sum to zero, so points are never created or destroyed: they are issued from an org's
issuance account, spent to its reward shelf, expired to its expiry account. This module
checks those rules and builds the common shapes; it knows nothing of Flask or databases.

It also holds the scoring engine: :func:`score_activity` turns one recorded activity, the
rule set in force and what the participant already earned in each cap window into integer
points and a breakdown of every step, which :func:`describe_breakdown` reads out in Chinese
or English. Pure and deterministic, so that any entry can be replayed from what it recorded.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Iterable

from ledger.errors import InvalidInput
from ledger.rulesets import ActivityType, Category, Combine, Label, Multipliers, NightWindow, Rounding, RuleSet, Unit

#: Largest amount one posting may carry. Keeps every amount exactly representable in the
#: canonical JSON of the hash chain (RFC 8785 allows integers up to 2**53).
MAX_POSTING_AMOUNT = 10**12
#: Largest balance, in either direction, any account may reach; far below 2**53 for the same reason.
MAX_BALANCE = 10**15


@dataclass(frozen=True, order=True)
class Leg:
    """An amount added to (positive) or taken from (negative) one account."""

    account_id: int
    amount: int


def is_integer(value: object) -> bool:
    """Tell whether ``value`` is a true integer (``True`` and ``1.0`` are not)."""
    return type(value) is int


def check_amount(amount: object, *, field: str = "amount") -> int:
    """Return ``amount`` if it is a positive integer number of points within bounds."""
    if not is_integer(amount):
        raise InvalidInput("must be an integer number of points", field=field)
    if not 0 < amount <= MAX_POSTING_AMOUNT:
        raise InvalidInput(f"must be between 1 and {MAX_POSTING_AMOUNT}", field=field)
    return amount


def balanced_legs(legs: Iterable[Leg]) -> tuple[Leg, ...]:
    """Return ``legs`` sorted by account after checking they form a valid transaction."""
    legs = tuple(legs)
    if len(legs) < 2:
        raise InvalidInput("a transaction needs at least two legs", field="legs")
    seen: set[int] = set()
    for index, leg in enumerate(legs):
        field = f"legs[{index}]"
        if not is_integer(leg.account_id) or leg.account_id <= 0:
            raise InvalidInput("must name an account by its positive integer id", field=f"{field}.account_id")
        if leg.account_id in seen:
            raise InvalidInput("an account may appear only once in a transaction", field=f"{field}.account_id")
        seen.add(leg.account_id)
        if not is_integer(leg.amount):
            raise InvalidInput("must be an integer number of points", field=f"{field}.amount")
        if leg.amount == 0 or abs(leg.amount) > MAX_POSTING_AMOUNT:
            raise InvalidInput(
                f"must be non-zero and at most {MAX_POSTING_AMOUNT} in size", field=f"{field}.amount"
            )
    total = sum(leg.amount for leg in legs)
    if total != 0:
        raise InvalidInput(f"legs must sum to zero, not {total}", field="legs")
    return tuple(sorted(legs))


def transfer(source_account_id: int, target_account_id: int, amount: int) -> tuple[Leg, ...]:
    """Return the legs that move ``amount`` points from one account to another."""
    check_amount(amount)
    return balanced_legs([Leg(source_account_id, -amount), Leg(target_account_id, amount)])


def mirrored(legs: Iterable[Leg]) -> tuple[Leg, ...]:
    """Return the legs that undo ``legs`` exactly."""
    return balanced_legs(Leg(leg.account_id, -leg.amount) for leg in legs)


# Scoring: one recorded activity, its rule set and the cap windows in; points and a breakdown out.

#: The longest single activity the engine accepts; a longer one is a recording mistake.
MAX_ACTIVITY = dt.timedelta(hours=24)
_MINUTE = dt.timedelta(minutes=1)
_UTC = dt.timezone.utc


@dataclass(frozen=True)
class ServiceFacts:
    """What was recorded about one activity, as the engine needs it."""

    activity_type: str
    category: Category
    #: Aware (UTC or any zone).
    started_at: dt.datetime
    #: Aware, after ``started_at``.
    ended_at: dt.datetime
    #: IANA name of the time zone of the org where the service happened.
    time_zone: str
    travel_minutes: int = 0
    #: For quantity types: persons sent, yuan donated, …
    quantity: int | None = None
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EarnedSoFar:
    """What the participant already has in each cap window (same local day, month, year) before this activity."""

    #: Counted minutes of their earlier activities on the same business date.
    day_minutes: int = 0
    #: Points earned earlier in the business date's month, and in its year.
    month_points: int = 0
    year_points: int = 0


@dataclass(frozen=True)
class Score:
    """The points an activity earns, the service time it adds, and the steps that explain both."""

    points: int
    #: Verified minutes added to the participant's service hours (0 when the type is not service).
    service_minutes: int
    #: Local date (in the org's time zone) of the start: the day, month and year the points belong to.
    business_date: dt.date
    #: JSON-able record of the inputs and of every step; see :func:`score_activity`.
    breakdown: dict


@dataclass(frozen=True)
class _Activity:
    """The facts once checked: the activity type, and the period in UTC with its local business date."""

    kind: ActivityType
    category: Category
    zone: zoneinfo.ZoneInfo
    start: dt.datetime
    end: dt.datetime
    business_date: dt.date


def score_activity(facts: ServiceFacts, rules: RuleSet, earned: EarnedSoFar) -> Score:
    """Score one activity under ``rules``, given what the participant earned before it in each cap window.

    The steps, in order: service minutes (plus travel where it counts), the minimum duration,
    rounding, the daily hours cap, base points, multipliers, the per-activity cap, then the
    month and year caps. Each step works on integers and floors fractions, so the same inputs
    always give the same score. The breakdown records the inputs (local times, day kind, night
    minutes, the multipliers whose conditions held, what was earned before) and each step that produced
    or changed a number, so one entry can be explained and replayed on its own.
    """
    activity = _checked(facts, rules, earned)
    day_kind = rules.calendar.day_kind(activity.business_date)
    night = _night_time(activity, rules.multipliers.night)
    is_night = night * 2 >= activity.end - activity.start
    candidates = _multiplier_candidates(
        rules.multipliers, day_kind, is_night, facts.tags, activity.category, service=activity.kind.counts_as_service
    )
    steps: list[dict] = []
    points, minutes = _points_and_minutes(facts, activity, rules, earned, candidates, steps)
    service_minutes = minutes if activity.kind.counts_as_service else 0
    inputs = {
        "activity_type": activity.kind.code,
        "category": activity.category.value,
        "local_start": _local_clock(activity.start, activity.zone),
        "local_end": _local_clock(activity.end, activity.zone),
        "time_zone": facts.time_zone,
        "business_date": activity.business_date.isoformat(),
        "travel_minutes": facts.travel_minutes,
        "quantity": facts.quantity,
        "tags": sorted(facts.tags),
        "day_kind": day_kind,
        "night_minutes": night // _MINUTE,
        "combine": rules.multipliers.combine.value,
        "multipliers": candidates,
        "earned_before": {
            "day_minutes": earned.day_minutes,
            "month_points": earned.month_points,
            "year_points": earned.year_points,
        },
    }
    breakdown = {"inputs": inputs, "steps": steps, "points": points, "service_minutes": service_minutes}
    return Score(points, service_minutes, activity.business_date, breakdown)


def _points_and_minutes(
    facts: ServiceFacts,
    activity: _Activity,
    rules: RuleSet,
    earned: EarnedSoFar,
    candidates: list[dict],
    steps: list[dict],
) -> tuple[int, int]:
    """Run the scoring steps in order, recording each in ``steps``; return (points, counted minutes)."""
    kind, caps = activity.kind, rules.caps
    duration = (activity.end - activity.start) // _MINUTE
    travel = facts.travel_minutes if kind.travel_counts else 0
    minutes = duration + travel
    steps.append({"step": "minutes", "duration_minutes": duration, "travel_minutes": travel, "minutes": minutes})
    if minutes < kind.min_minutes:
        steps.append({"step": "below_minimum", "min_minutes": kind.min_minutes, "minutes": minutes, "points": 0})
        return 0, 0
    minutes = _rounded_minutes(minutes, kind, steps)
    minutes = _capped(steps, "cap_hours_per_day", "minutes", minutes, caps.hours_per_day, earned.day_minutes, scale=60)
    points = _base_points(kind, minutes, facts.quantity, steps)
    points = _multiplied(points, candidates, rules.multipliers.combine, steps)
    activity_limit = caps.points_per_activity if kind.max_points is None else kind.max_points
    points = _capped(steps, "cap_activity", "points", points, activity_limit)
    if activity.category is not Category.UNIT:  # the month and year caps are per person
        points = _capped(steps, "cap_month", "points", points, caps.points_per_month, earned.month_points)
        points = _capped(steps, "cap_year", "points", points, caps.points_per_year, earned.year_points)
    return points, minutes


# Refusals: each names the field at fault.


def _checked(facts: ServiceFacts, rules: RuleSet, earned: EarnedSoFar) -> _Activity:
    """Return the facts checked against the rule set, or refuse them naming the field at fault."""
    kind = _activity_type(facts.activity_type, rules)
    category = _category(facts.category, kind)
    zone = _zone(facts.time_zone)
    start, end = _period(facts.started_at, facts.ended_at)
    _check_counts(facts, kind, earned)
    business_date = start.astimezone(zone).date()
    if not rules.covers(business_date):
        raise InvalidInput(f"the rule set {rules.name!r} is not in force on {business_date}", field="started_at")
    return _Activity(kind, category, zone, start, end, business_date)


def _activity_type(code: object, rules: RuleSet) -> ActivityType:
    """Return the rule set's activity type called ``code``; an unknown code is refused."""
    if not isinstance(code, str) or code not in rules.activity_types:
        known = ", ".join(sorted(rules.activity_types))
        raise InvalidInput(f"unknown activity type {code!r}; this rule set has: {known}", field="activity_type")
    return rules.activity_types[code]


def _category(value: object, kind: ActivityType) -> Category:
    """Return the participant category, refused if it is none or may not earn with ``kind``."""
    try:
        category = Category(value)
    except ValueError:
        raise InvalidInput(f"unknown participant category {value!r}", field="category") from None
    if category not in kind.categories:
        allowed = ", ".join(sorted(allowed.value for allowed in kind.categories))
        raise InvalidInput(
            f"a {category.value} may not earn with {kind.code}; only these categories may: {allowed}",
            field="activity_type",
        )
    return category


def _zone(name: object) -> zoneinfo.ZoneInfo:
    """Return the IANA time zone that decides local days, night hours and cap windows."""
    # "localtime" is a file of some zone databases, not a zone: it means whatever the server says.
    if isinstance(name, str) and name != "localtime":
        try:
            return zoneinfo.ZoneInfo(name)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            pass
    raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai", field="time_zone")


def _period(started_at: object, ended_at: object) -> tuple[dt.datetime, dt.datetime]:
    """Return start and end in UTC, so that durations are elapsed time even across a daylight-saving change."""
    for field, moment in (("started_at", started_at), ("ended_at", ended_at)):
        if not isinstance(moment, dt.datetime) or moment.utcoffset() is None:
            raise InvalidInput("must be a date and time with a time zone", field=field)
    start, end = started_at.astimezone(_UTC), ended_at.astimezone(_UTC)
    if end <= start:
        raise InvalidInput("must be after started_at", field="ended_at")
    if end - start > MAX_ACTIVITY:
        raise InvalidInput("one activity may last at most 24 hours", field="ended_at")
    return start, end


def _check_counts(facts: ServiceFacts, kind: ActivityType, earned: EarnedSoFar) -> None:
    """Refuse counts that are not true non-negative integers, a quantity the type does not take, and odd tags."""
    counts = {"travel_minutes": facts.travel_minutes}
    counts |= {f"earned.{name}": getattr(earned, name) for name in ("day_minutes", "month_points", "year_points")}
    for field, value in counts.items():
        if not is_integer(value) or value < 0:
            raise InvalidInput("must be a non-negative integer", field=field)
    if kind.unit is Unit.QUANTITY and not (is_integer(facts.quantity) and facts.quantity > 0):
        raise InvalidInput(f"{kind.code} is scored per quantity: give a positive integer", field="quantity")
    if kind.unit is not Unit.QUANTITY and facts.quantity is not None:
        raise InvalidInput(f"{kind.code} is scored per {kind.unit.value}, so it takes no quantity", field="quantity")
    if not isinstance(facts.tags, (frozenset, set)) or not all(isinstance(tag, str) for tag in facts.tags):
        raise InvalidInput("must be a set of tag names", field="tags")


# Time in the org's zone.


def _local_clock(moment: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """Show ``moment`` on the org's wall clock, to the minute unless it has seconds."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    return local.isoformat(timespec="minutes" if local.second == local.microsecond == 0 else "seconds")


def _night_time(activity: _Activity, window: NightWindow | None) -> dt.timedelta:
    """Return how much of the activity lies inside the night window, in the org's local time.

    The window is laid out on every local day from the day before the start to the day of the
    end, so a window that crosses midnight (22:00–06:00) is caught on both sides of it.
    """
    if window is None:
        return dt.timedelta(0)
    crosses_midnight = window.ends <= window.starts
    total = dt.timedelta(0)
    day = activity.start.astimezone(activity.zone).date() - dt.timedelta(days=1)
    while day <= activity.end.astimezone(activity.zone).date():
        night_start = dt.datetime.combine(day, window.starts, activity.zone).astimezone(_UTC)
        night_end = dt.datetime.combine(day + dt.timedelta(days=crosses_midnight), window.ends, activity.zone)
        overlap = min(activity.end, night_end.astimezone(_UTC)) - max(activity.start, night_start)
        total += max(overlap, dt.timedelta(0))
        day += dt.timedelta(days=1)
    return total


def _rounded_minutes(minutes: int, kind: ActivityType, steps: list[dict]) -> int:
    """Round to the type's step (nearest rounds a half up); a one-minute step changes nothing and is not shown."""
    size = kind.round_to_minutes
    if size == 1:
        return minutes
    if kind.rounding is Rounding.DOWN:
        minutes = minutes // size * size
    elif kind.rounding is Rounding.UP:
        minutes = -(-minutes // size) * size
    else:
        minutes = (2 * minutes + size) // (2 * size) * size
    steps.append({"step": "round_minutes", "to": size, "mode": kind.rounding.value, "minutes": minutes})
    return minutes


# Points.


def _base_points(kind: ActivityType, minutes: int, quantity: int | None, steps: list[dict]) -> int:
    """Return the points before multipliers and caps: per hour of counted time, per occurrence, or per quantity."""
    step = {"step": "base", "unit": kind.unit.value, "rate": kind.points}
    if kind.unit is Unit.HOUR:
        step |= {"minutes": minutes, "points": minutes * kind.points // 60}
    elif kind.unit is Unit.QUANTITY:
        step |= {"per_quantity": kind.per_quantity, "quantity": quantity}
        step["points"] = quantity * kind.points // kind.per_quantity
    else:
        step["points"] = kind.points
    steps.append(step)
    return step["points"]


def _multiplier_candidates(
    multipliers: Multipliers,
    day_kind: str,
    is_night: bool,
    tags: frozenset[str],
    category: Category,
    *,
    service: bool,
) -> list[dict]:
    """Return the multipliers whose condition holds, in the fixed order: day kind, night, tags (sorted), category.

    Weekend, holiday and night reward giving up one's own time, so they apply only to types
    that count as service time: a unit signing an agreement on a holiday earns no more for it.
    A percent of 100 changes nothing and is left out, so that it never counts as the highest.
    """
    candidates = []
    day_percent = {"holiday": multipliers.holiday_percent, "weekend": multipliers.weekend_percent}.get(day_kind)
    if service and day_percent is not None:
        candidates.append({"reason": day_kind, "percent": day_percent})
    if service and is_night:
        candidates.append({"reason": "night", "percent": multipliers.night.percent})
    for tag in sorted(tags & multipliers.tags.keys()):
        candidates.append({"reason": "tag", "tag": tag, "percent": multipliers.tags[tag]})
    if category in multipliers.categories:
        percent = multipliers.categories[category]
        candidates.append({"reason": "category", "category": category.value, "percent": percent})
    return [candidate for candidate in candidates if candidate["percent"] != 100]


def _multiplied(points: int, candidates: list[dict], combine: Combine, steps: list[dict]) -> int:
    """Apply only the largest multiplier (HIGHEST: the first of equals wins) or each in turn (MULTIPLY)."""
    if combine is Combine.HIGHEST and candidates:
        candidates = [max(candidates, key=lambda candidate: candidate["percent"])]
    for candidate in candidates:
        points = points * candidate["percent"] // 100
        steps.append({"step": "multiplier", **candidate, "points": points})
    return points


def _capped(
    steps: list[dict],
    step: str,
    measure: str,
    amount: int,
    limit: int | None,
    earned_before: int | None = None,
    *,
    scale: int = 1,
) -> int:
    """Return ``amount`` within what ``limit`` leaves after ``earned_before``, never below zero.

    ``scale`` converts the limit to the amount's measure (60: a cap in hours on minutes). The
    step is recorded only when the cap binds, with the limit and what was earned before it.
    """
    if limit is None:
        return amount
    room = max(limit * scale - (earned_before or 0), 0)
    if amount <= room:
        return amount
    record = {"step": step, "limit": limit}
    if earned_before is not None:
        record["earned_before"] = earned_before
    steps.append(record | {measure: room})
    return room


# Explaining a breakdown: one line per step, in Chinese or English.

_ROUNDING_WORDS = {
    "down": Label("向下取整", "Rounded down to"),
    "nearest": Label("四舍五入", "Rounded to the nearest"),
    "up": Label("向上取整", "Rounded up to"),
}
_REASON_WORDS = {
    "holiday": Label("节假日", "Holiday"),
    "weekend": Label("周末", "Weekend"),
    "night": Label("夜间", "Night"),
}
_TAG_WORDS = {"emergency": Label("应急", "Emergency")}
_CATEGORY_WORDS = {
    Category.VOLUNTEER: Label("志愿者", "Volunteer"),
    Category.PARTY_MEMBER: Label("党员", "Party member"),
    Category.UNIT: Label("共建单位", "Co-building unit"),
}


def describe_breakdown(breakdown: dict, language: str = "zh") -> list[str]:
    """Render each step of a breakdown as one line a participant can read: ``zh`` (the default) or ``en``."""
    if language not in ("zh", "en"):
        raise InvalidInput(f"unknown language {language!r}; use zh or en", field="language")
    lines = []
    for index, step in enumerate(breakdown["steps"]):
        line = _STEP_LINES.get(step.get("step"))
        if line is None:
            raise InvalidInput(f"unknown step {step.get('step')!r}", field=f"breakdown.steps[{index}].step")
        lines.append(getattr(line(step), language))
    return lines


def _minutes_line(step: dict) -> Label:
    minutes, travel = step["minutes"], step["travel_minutes"]
    if travel:
        duration = step["duration_minutes"]
        return Label(
            f"服务时长 {duration} 分钟 + 路途 {travel} 分钟 = {minutes} 分钟",
            f"Service time {duration} min + travel {travel} min = {minutes} min",
        )
    return Label(f"服务时长 {minutes} 分钟", f"Service time {minutes} min")


def _below_minimum_line(step: dict) -> Label:
    minutes, least = step["minutes"], step["min_minutes"]
    return Label(f"{minutes} 分钟不足最短时长 {least} 分钟：0 分", f"{minutes} min is below the {least} min minimum: 0")


def _round_minutes_line(step: dict) -> Label:
    words, size, minutes = _ROUNDING_WORDS[step["mode"]], step["to"], step["minutes"]
    return Label(f"按 {size} 分钟{words.zh}：{minutes} 分钟", f"{words.en} {size} min: {minutes} min")


def _base_line(step: dict) -> Label:
    rate, points = step["rate"], step["points"]
    if step["unit"] == Unit.HOUR:
        minutes = step["minutes"]
        return Label(
            f"基础积分：每小时 {rate} 分 × {minutes} 分钟 = {points} 分",
            f"Base: {rate} points an hour × {minutes} min = {points}",
        )
    if step["unit"] == Unit.QUANTITY:
        per, quantity = step["per_quantity"], step["quantity"]
        return Label(
            f"基础积分：每 {per} 计 {rate} 分 × 数量 {quantity} = {points} 分",
            f"Base: {rate} points per {per} × quantity {quantity} = {points}",
        )
    return Label(f"基础积分：每次 {points} 分", f"Base: {points} points an occurrence")


def _multiplier_line(step: dict) -> Label:
    if step["reason"] == "tag":
        reason = _TAG_WORDS.get(step["tag"], Label(f"标签 {step['tag']}", f"Tag {step['tag']}"))
    elif step["reason"] == "category":
        reason = _CATEGORY_WORDS[step["category"]]
    else:
        reason = _REASON_WORDS[step["reason"]]
    percent, points = step["percent"], step["points"]
    return Label(f"{reason.zh} ×{percent}%：{points} 分", f"{reason.en} ×{percent}%: {points}")


def _day_cap_line(step: dict) -> Label:
    limit, before, minutes = step["limit"], step["earned_before"], step["minutes"]
    return Label(
        f"每日上限 {limit} 小时（当天此前已计 {before} 分钟）：{minutes} 分钟",
        f"Daily cap {limit} h ({before} min earlier that day): {minutes} min",
    )


def _activity_cap_line(step: dict) -> Label:
    return Label(f"单次上限 {step['limit']} 分：{step['points']} 分", f"Per-activity cap {step['limit']}: {step['points']}")


def _window_cap_line(zh_window: str, en_window: str):
    """Return the line maker for a cap over a window of earlier earnings (the month, the year)."""

    def line(step: dict) -> Label:
        limit, before, points = step["limit"], step["earned_before"], step["points"]
        return Label(
            f"{zh_window}上限 {limit} 分（此前已得 {before} 分）：{points} 分",
            f"{en_window} cap {limit} ({before} earned before): {points}",
        )

    return line


_STEP_LINES = {
    "minutes": _minutes_line,
    "below_minimum": _below_minimum_line,
    "round_minutes": _round_minutes_line,
    "cap_hours_per_day": _day_cap_line,
    "base": _base_line,
    "multiplier": _multiplier_line,
    "cap_activity": _activity_cap_line,
    "cap_month": _window_cap_line("本月", "Monthly"),
    "cap_year": _window_cap_line("本年", "Yearly"),
}
