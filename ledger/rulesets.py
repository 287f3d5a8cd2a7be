"""Rule sets (积分规则) as plain values: what a street or community says service is worth.

A rule set is written as a YAML or JSON document, checked by the schema in
:mod:`ledger.ruleset_schema`, and turned into the frozen values below, which the scoring
engine (:mod:`ledger.points`) and the eligibility rules (:mod:`ledger.rewards`) read. Nothing
in a document is ever executed: every rule is data chosen from a fixed vocabulary.

Amounts are integers: points per hour, per occurrence or per quantity; multipliers are whole
percentages (150 means ×1.5); time is in minutes or whole hours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Mapping


class Category(StrEnum):
    """Who earns: the participant category a rule can single out."""

    VOLUNTEER = "volunteer"
    PARTY_MEMBER = "party_member"
    UNIT = "unit"


class Unit(StrEnum):
    """What an activity type's points are counted per."""

    HOUR = "hour"
    OCCURRENCE = "occurrence"
    QUANTITY = "quantity"


class Rounding(StrEnum):
    """How service minutes are rounded to the type's step."""

    DOWN = "down"
    NEAREST = "nearest"
    UP = "up"


class Combine(StrEnum):
    """How several multipliers that apply at once combine."""

    #: Only the largest applies (the default: conditions do not stack).
    HIGHEST = "highest"
    #: Each applies in turn.
    MULTIPLY = "multiply"


class ExpiryPolicy(StrEnum):
    NEVER = "never"
    #: Points expire a number of months after the day they were earned.
    MONTHS_AFTER_EARNED = "months_after_earned"
    #: Points expire at the end of the year after the year they were earned.
    END_OF_FOLLOWING_YEAR = "end_of_following_year"


class BelowZero(StrEnum):
    """What a penalty does when the participant has fewer points than it deducts."""

    SKIP = "skip"
    CAP_AT_BALANCE = "cap_at_balance"


class RankScope(StrEnum):
    """The org level within which a title's rank or share is counted."""

    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"


def frozen_mapping(items: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(items or {}))


ALL_CATEGORIES = frozenset(Category)


@dataclass(frozen=True)
class Label:
    """A name in the two interface languages."""

    zh: str
    en: str


@dataclass(frozen=True)
class ActivityType:
    """A kind of service and what it earns."""

    code: str
    label: Label
    unit: Unit
    #: Points per hour, per occurrence, or per ``per_quantity`` units of quantity.
    points: int
    #: For quantity types: how many units earn ``points`` (for example 100 yuan donated).
    per_quantity: int = 1
    #: Service shorter than this earns nothing and counts no hours.
    min_minutes: int = 0
    #: Counted minutes are rounded to a multiple of this (30: to the half hour).
    round_to_minutes: int = 1
    rounding: Rounding = Rounding.DOWN
    #: Whether declared travel time counts as service time.
    travel_counts: bool = False
    #: Largest number of points one activity of this type earns; ``None`` for the rule set's cap.
    max_points: int | None = None
    #: Participant categories who may earn with this type.
    categories: frozenset[Category] = ALL_CATEGORIES
    #: Whether the minutes count towards service hours (and star levels).
    counts_as_service: bool = True


@dataclass(frozen=True)
class NightWindow:
    """Local times between which service counts as night service; may cross midnight."""

    starts: dt.time
    ends: dt.time
    percent: int


@dataclass(frozen=True)
class Multipliers:
    weekend_percent: int = 100
    holiday_percent: int = 100
    night: NightWindow | None = None
    #: Percent by activity tag, for example ``{"emergency": 200}``.
    tags: Mapping[str, int] = field(default_factory=frozen_mapping)
    #: Percent by participant category.
    categories: Mapping[Category, int] = field(default_factory=frozen_mapping)
    combine: Combine = Combine.HIGHEST


@dataclass(frozen=True)
class Calendar:
    """Public holidays and the make-up working days (调休上班) of the Chinese schedule."""

    holidays: frozenset[dt.date] = frozenset()
    #: Weekend days that are working days because a holiday borrowed them.
    workdays: frozenset[dt.date] = frozenset()

    def day_kind(self, day: dt.date) -> str:
        """Return ``holiday``, ``weekend`` (a rest day that is not a holiday) or ``workday``."""
        if day in self.holidays:
            return "holiday"
        if day.weekday() >= 5 and day not in self.workdays:
            return "weekend"
        return "workday"


@dataclass(frozen=True)
class Caps:
    """Limits per person; ``None`` means no limit."""

    hours_per_day: int | None = None
    points_per_activity: int | None = None
    points_per_month: int | None = None
    points_per_year: int | None = None


@dataclass(frozen=True)
class PartyMemberRequirement:
    """What an in-service party member is expected to do in their home community each year."""

    min_activities: int = 0
    min_hours: int = 0


@dataclass(frozen=True)
class Penalties:
    order_not_delivered: int = 0
    unexcused_absence: int = 0
    below_zero: BelowZero = BelowZero.SKIP


@dataclass(frozen=True)
class Expiry:
    policy: ExpiryPolicy = ExpiryPolicy.NEVER
    #: For ``months_after_earned``.
    months: int | None = None


@dataclass(frozen=True)
class StarLevels:
    """Cumulative verified hours for one star, two stars, …; and optionally within one year."""

    hours: tuple[int, ...] = (100, 300, 600, 1000, 1500)
    per_year_hours: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Title:
    """An annual title (评优) and the criteria for being eligible for it.

    Every criterion given must hold (``max_rank`` and ``top_percent`` too, when both are
    given); ``None`` means the criterion is not required.
    """

    code: str
    label: Label
    category: Category
    min_hours: int | None = None
    min_points: int | None = None
    min_activities: int | None = None
    #: Rank by points earned within ``scope`` at most this (10: the top ten).
    max_rank: int | None = None
    #: Within the top this percent of ``scope`` by points earned.
    top_percent: int | None = None
    scope: RankScope = RankScope.COMMUNITY
    #: Party members only: must have met the yearly requirement.
    requires_party_requirement: bool = False


@dataclass(frozen=True)
class RuleSet:
    """One version of a rule set, as data."""

    name: str
    effective_from: dt.date
    effective_to: dt.date | None
    activity_types: Mapping[str, ActivityType]
    multipliers: Multipliers = Multipliers()
    calendar: Calendar = Calendar()
    caps: Caps = Caps()
    party_members: PartyMemberRequirement = PartyMemberRequirement()
    penalties: Penalties = Penalties()
    expiry: Expiry = Expiry()
    star_levels: StarLevels = StarLevels()
    titles: Mapping[str, Title] = field(default_factory=frozen_mapping)

    def covers(self, day: dt.date) -> bool:
        """Tell whether ``day`` lies in this rule set's effective period."""
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)
