"""Rewards: what a participant's record entitles them to, as pure functions.

Star levels (星级) come from cumulative verified service time. The thresholds are hours;
time is counted in whole minutes, so no rounding happens before the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ledger.errors import InvalidInput

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
