"""Rewards: what a participant's record entitles them to, as pure functions.

Star levels (星级) come from cumulative verified service time. The thresholds are hours;
time is counted in whole minutes, so no rounding happens before the comparison.

Standings rank participants by points earned in a period; spending never lowers a rank.
Ties share a rank (1, 2, 2, 4). Within a tie the order shown is: more service minutes
first, then the lower participant id (the earlier registration), so a list never reshuffles
between two reads of the same data.

Annual title eligibility (评优资格) checks a participant's year against a title's criteria
and says, criterion by criterion, what was required, what was achieved and by how much it
was missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from ledger.errors import InvalidInput
from ledger.rulesets import Category, PartyMemberRequirement, Title

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


@dataclass(frozen=True)
class Standing:
    """One participant's place in a ranking."""

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
