"""Rewards: what a participant's record entitles them to, as pure functions.

Star levels (星级) come from cumulative verified service time. The thresholds are hours;
time is counted in whole minutes, so no rounding happens before the comparison.

Standings rank participants by points earned in a period; spending never lowers a rank.
Ties share a rank (1, 2, 2, 4). Within a tie the order shown is: more service minutes
first, then the lower participant id (the earlier registration), so a list never reshuffles
between two reads of the same data.

Expiry is first earned, first expired: points earned on a day form a lot that expires under
the rule set's policy; spending and earlier expiries consume the oldest lots first, so points
already spent are never expired and what expires is only the unspent remainder of old lots.

Annual title eligibility (评优资格) checks a participant's year against a title's criteria
and says, criterion by criterion, what was required, what was achieved and by how much it
was missed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

from ledger.errors import InvalidInput
from ledger.points import describe_breakdown
from ledger.rulesets import Category, Expiry, ExpiryPolicy, Label, PartyMemberRequirement, Title

#: Hours of verified service for one to five stars, unless a rule set says otherwise.
DEFAULT_STAR_THRESHOLD_HOURS = (100, 300, 600, 1000, 1500)


@dataclass(frozen=True)
class StarStanding:
    """A participant's star level and how far the next one is."""

    level: int
    service_minutes: int
    #: The next level, or ``None`` at the top.
    next_level: int | None
    #: Minutes still needed for the next level, or ``None`` at the top.
    minutes_to_next: int | None


def check_thresholds(threshold_hours: Sequence[int]) -> tuple[int, ...]:
    """Return the thresholds if they are positive whole hours in strictly increasing order."""
    thresholds = tuple(threshold_hours)
    for index, hours in enumerate(thresholds):
        if type(hours) is not int or hours <= 0:
            raise InvalidInput("must be a positive whole number of hours", field=f"star_levels[{index}]")
        if index and hours <= thresholds[index - 1]:
            raise InvalidInput("must be more than the level below it", field=f"star_levels[{index}]")
    return thresholds


def star_standing(
    service_minutes: int, threshold_hours: Sequence[int] = DEFAULT_STAR_THRESHOLD_HOURS
) -> StarStanding:
    """Return the star level reached with ``service_minutes`` of verified service."""
    if type(service_minutes) is not int or service_minutes < 0:
        raise InvalidInput("must be a non-negative whole number of minutes", field="service_minutes")
    thresholds = check_thresholds(threshold_hours)
    level = sum(1 for hours in thresholds if service_minutes >= hours * 60)
    if level == len(thresholds):
        return StarStanding(level, service_minutes, None, None)
    return StarStanding(level, service_minutes, level + 1, thresholds[level] * 60 - service_minutes)


class Standing(NamedTuple):
    """One participant's place in a ranking (a tuple: a street ranks tens of thousands at a time)."""

    participant_id: int
    points: int
    service_minutes: int
    #: 1 for the most points; participants with equal points share a rank.
    rank: int


def standings(totals: Iterable[tuple[int, int, int]]) -> list[Standing]:
    """Rank ``(participant_id, points, service_minutes)`` rows by points, ties sharing a rank."""
    ordered = sorted(totals, key=lambda row: (-row[1], -row[2], row[0]))
    result: list[Standing] = []
    for position, (participant_id, points, minutes) in enumerate(ordered, start=1):
        rank = result[-1].rank if result and result[-1].points == points else position
        result.append(Standing(participant_id, points, minutes, rank))
    return result


@dataclass(frozen=True)
class YearRecord:
    """What a participant did in one year, as the title criteria read it."""

    participant_id: int
    categories: frozenset[Category]
    points: int
    service_minutes: int
    activities: int
    #: Rank by points among the same category within the title's scope, and how many were ranked.
    rank: int
    ranked: int
    #: For party members: whether they met their home community's yearly requirement.
    party_requirement_met: bool | None = None


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    required: int
    achieved: int
    met: bool

    @property
    def shortfall(self) -> int:
        """How much is missing: points, minutes or activities below the bar, or places below the rank."""
        return 0 if self.met else abs(self.achieved - self.required)


@dataclass(frozen=True)
class Eligibility:
    title: str
    participant_id: int
    eligible: bool
    criteria: tuple[CriterionResult, ...]


def title_eligibility(title: Title, record: YearRecord) -> Eligibility:
    """Check one participant's year against one title, criterion by criterion."""
    results = []
    if title.category not in record.categories:
        results.append(CriterionResult("category", 1, 0, False))
    for criterion, required, achieved in (
        ("min_hours", None if title.min_hours is None else title.min_hours * 60, record.service_minutes),
        ("min_points", title.min_points, record.points),
        ("min_activities", title.min_activities, record.activities),
    ):
        if required is not None:
            results.append(CriterionResult(criterion, required, achieved, achieved >= required))
    if title.max_rank is not None:
        results.append(CriterionResult("max_rank", title.max_rank, record.rank, record.rank <= title.max_rank))
    if title.top_percent is not None:
        places = max(1, math.ceil(record.ranked * title.top_percent / 100))
        results.append(CriterionResult("top_percent", places, record.rank, record.rank <= places))
    if title.requires_party_requirement:
        met = bool(record.party_requirement_met)
        results.append(CriterionResult("party_requirement", 1, int(met), met))
    return Eligibility(title.code, record.participant_id, all(r.met for r in results), tuple(results))


def party_requirement_met(requirement: PartyMemberRequirement, activities: int, service_minutes: int) -> bool:
    """Tell whether a party member's year in their home community meets the requirement."""
    return activities >= requirement.min_activities and service_minutes >= requirement.min_hours * 60


# Expiry (积分过期). Points are counted in lots: what a participant earned on one day. Spending
# and expiry take the oldest lots first (first earned, first used), so points already spent
# are never expired, and what expires is only the unspent remainder of old lots. A lot's
# expiry date only grows with its earning date under every policy, so the lots due by a day
# are always the oldest ones.

#: Points earned on one day (the day's net, when positive) and the day.
Lot = tuple[dt.date, int]


def expiry_date(earned_on: dt.date, policy: Expiry) -> dt.date | None:
    """Return the first day on which points earned on ``earned_on`` are expired; ``None`` for never.

    Months after earned land on the same day of the month, or on the month's last day when it
    is shorter (earned 31 March, one month: expired from 30 April), so no lot outlives its term.
    """
    if policy.policy == ExpiryPolicy.END_OF_FOLLOWING_YEAR:
        return dt.date(earned_on.year + 2, 1, 1)
    if policy.policy == ExpiryPolicy.MONTHS_AFTER_EARNED:
        year, month_index = divmod(earned_on.year * 12 + earned_on.month - 1 + policy.months, 12)
        month = month_index + 1
        return dt.date(year, month, min(earned_on.day, calendar.monthrange(year, month)[1]))
    return None


def lots_and_deductions(days: Iterable[tuple[dt.date, int]]) -> tuple[list[Lot], int]:
    """Split net points earned per day into lots (the positive days, oldest first) and a deduction.

    A day whose net is negative (a penalty larger than that day's earnings) earned nothing to
    expire; the points it took come out of the oldest lots, like a spend, so they are returned
    as points consumed.
    """
    lots, deducted = [], 0
    for day, points in sorted(days):
        if points > 0:
            lots.append((day, points))
        else:
            deducted -= points
    return lots, deducted


def unconsumed_by_expiry(lots: Iterable[Lot], consumed: int, policy: Expiry) -> list[tuple[dt.date, int]]:
    """Return what is left of the lots after ``consumed`` points took the oldest first, by expiry day.

    ``consumed`` is every point spent or expired so far plus the deductions of negative days.
    The result is ``(expires_on, points)`` soonest first; lots that never expire are left out.
    """
    if type(consumed) is not int or consumed < 0:
        raise InvalidInput("must be a non-negative whole number of points", field="consumed")
    left = consumed
    remaining: dict[dt.date, int] = {}
    for earned_on, points in sorted(lots):
        if type(points) is not int or points <= 0:
            raise InvalidInput("a lot is a positive whole number of points", field="lots")
        taken = min(left, points)
        left -= taken
        expires_on = expiry_date(earned_on, policy)
        if points > taken and expires_on is not None:
            remaining[expires_on] = remaining.get(expires_on, 0) + points - taken
    return sorted(remaining.items())


def _expiring_by(lots: Iterable[Lot], consumed: int, policy: Expiry, as_of: dt.date) -> list[tuple[dt.date, int]]:
    """Return the unconsumed points that are expired on ``as_of``, by the day they expired."""
    return [(day, points) for day, points in unconsumed_by_expiry(lots, consumed, policy) if day <= as_of]


def due_to_expire(lots: Iterable[Lot], consumed: int, policy: Expiry, as_of: dt.date) -> int:
    """Return how many points must be expired by ``as_of``: never more than the balance.

    This is the points of the lots expired by then less everything consumed, and at least 0:
    consumption takes the oldest lots first, and the lots expired by a day are the oldest.
    """
    return sum(points for _, points in _expiring_by(lots, consumed, policy, as_of))


def upcoming_expiries(lots: Iterable[Lot], consumed: int, policy: Expiry, after: dt.date) -> list[tuple[dt.date, int]]:
    """Return what expires after ``after`` and when: ``(expires_on, points)``, soonest first.

    Points expired on or before ``after`` and not yet taken away are not listed: they are what
    :func:`due_to_expire` reports for that day, and the next expiry run takes them.
    """
    return [(day, points) for day, points in unconsumed_by_expiry(lots, consumed, policy) if day > after]


def expiry_breakdown(lots: Sequence[Lot], consumed: int, policy: Expiry, as_of: dt.date) -> dict:
    """Return what an expire entry records to explain itself; its ``expired`` is the amount due.

    It says the policy, the day, the points earned in lots expired by that day, what was
    consumed before (oldest first), and what expires now by expiry day.
    """
    expiring = _expiring_by(lots, consumed, policy, as_of)
    return {
        "policy": ExpiryPolicy(policy.policy).value,
        "months": policy.months,
        "as_of": as_of.isoformat(),
        "earned_expiring": sum(points for earned_on, points in lots if _expired_on(earned_on, policy, as_of)),
        "consumed": consumed,
        "expiring": [{"expires_on": day.isoformat(), "points": points} for day, points in expiring],
        "expired": sum(points for _, points in expiring),
    }


def _expired_on(earned_on: dt.date, policy: Expiry, as_of: dt.date) -> bool:
    expires_on = expiry_date(earned_on, policy)
    return expires_on is not None and expires_on <= as_of


def _policy_line(breakdown: dict) -> Label:
    policy, months = breakdown["policy"], breakdown["months"]
    if policy == ExpiryPolicy.END_OF_FOLLOWING_YEAR:
        return Label(
            "规则：积分在获得次年的年底过期", "Rule: points expire at the end of the year after they were earned"
        )
    if policy == ExpiryPolicy.MONTHS_AFTER_EARNED:
        return Label(
            f"规则：积分在获得 {months} 个月后过期", f"Rule: points expire {months} months after they were earned"
        )
    return Label("规则：积分不过期", "Rule: points never expire")


def describe_expiry(breakdown: dict, language: str = "zh") -> list[str]:
    """Render an expire entry's breakdown as lines a participant can read: ``zh`` (the default) or ``en``."""
    if language not in ("zh", "en"):
        raise InvalidInput(f"unknown language {language!r}; use zh or en", field="language")
    as_of, consumed = breakdown["as_of"], breakdown["consumed"]
    lines = [
        _policy_line(breakdown),
        Label(
            f"截至 {as_of} 到期的积分：共获得 {breakdown['earned_expiring']} 分",
            f"Points earned that expire by {as_of}: {breakdown['earned_expiring']}",
        ),
        Label(
            f"已使用或过期 {consumed} 分，先抵扣最早获得的积分",
            f"Already spent or expired: {consumed}, taken from the earliest points first",
        ),
        *(
            Label(f"{day} 到期未使用：{points} 分", f"Unspent, expired on {day}: {points}")
            for day, points in ((part["expires_on"], part["points"]) for part in breakdown["expiring"])
        ),
        Label(f"本次过期 {breakdown['expired']} 分", f"Expired now: {breakdown['expired']}"),
    ]
    return [getattr(line, language) for line in lines]


def explain_entry(kind: str, breakdown: dict | None, language: str = "zh") -> list[str]:
    """Return the lines that say why a ledger entry is what it is: its scoring steps, or its expiry."""
    if not breakdown:
        return []
    if kind == "expire":
        return describe_expiry(breakdown, language)
    return describe_breakdown(breakdown, language) if "steps" in breakdown else []
