"""Rule-set documents (积分规则): read as data, checked key by key, built into a :class:`RuleSet`.

Street-office staff write a rule set in YAML (or JSON); ``docs/rules.md`` describes every key.
A document is read with a safe loader and checked, never executed. The checks are strict
because a published rule set decides what service is worth: an unknown key is refused (a typo
would otherwise fall back to a default without anyone noticing), numbers must be written as
whole numbers (``true``, ``1.5`` and ``"10"`` are refused, not coerced), and sizes are checked
before anything is read further, so a huge document costs little to refuse. Every problem is
reported at once under its dotted path (``activity_types.patrol.points``, ``calendar.holidays.3``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import is_dataclass
from enum import Enum
from functools import cache
from importlib import resources
from itertools import chain
from typing import Any, ClassVar

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validates_schema
from marshmallow.error_store import SCHEMA
from marshmallow.validate import Length, Regexp

from ledger.errors import InvalidInput, RuleSetInvalid
from ledger.rulesets import (
    ActivityType,
    BelowZero,
    Calendar,
    Caps,
    Category,
    Combine,
    Expiry,
    ExpiryPolicy,
    Label,
    Multipliers,
    NightWindow,
    PartyMemberRequirement,
    Penalties,
    RankScope,
    Rounding,
    RuleSet,
    StarLevels,
    Title,
    Unit,
    frozen_mapping,
)

#: Largest value of any open-ended number (points, hours, counts): no real rule comes near it,
#: and it keeps the engine's products of points, hours and percentages small exact integers.
LARGEST = 1_000_000
MAX_PERCENT = 1000
MINUTES_PER_DAY = 1440
MAX_DOCUMENT_CHARS = 256 * 1024
MAX_TEXT_CHARS = 200
MAX_ACTIVITY_TYPES = 200
MAX_TITLES = 50
MAX_TAGS = 50
MAX_STAR_LEVELS = 10
#: Days in one rule set's calendar, holidays and make-up working days together.
MAX_CALENDAR_DAYS = 400
#: A holiday run lasts at most nine days; a longer range is a typo (2026 for 2025), not a holiday.
MAX_RANGE_DAYS = 31

CODE = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
BOOL_TAG, INT_TAG, TIMESTAMP_TAG = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "timestamp"))


# --- Reading the text ------------------------------------------------------------------------


class DocumentLoader(yaml.SafeLoader):
    """The safe loader without the YAML 1.1 guesses that misread rule documents.

    Dates stay text, so ``2026-02-30`` is reported at its path instead of failing inside the
    parser; ``22:00`` stays text instead of becoming the base-60 number 1320; ``yes``, ``no``,
    ``on`` and ``off`` stay text instead of becoming booleans; and a key written twice in one
    mapping is refused instead of the last one silently winning.
    """

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag not in (BOOL_TAG, INT_TAG, TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key_node.value!r} is written twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


DocumentLoader.add_implicit_resolver(BOOL_TAG, re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF"))
DocumentLoader.add_implicit_resolver(INT_TAG, re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z"), list("-+0123456789"))


def read_yaml(text: str) -> object:
    loader = DocumentLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


READERS = {"yaml": read_yaml, "json": json.loads}


def syntax_message(error: Exception) -> str:
    """Say where the text stops being YAML or JSON, as a line and column a person can find."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        said = ", ".join(filter(None, (error.context, error.problem)))
        return f"line {mark.line + 1}, column {mark.column + 1}: {said}"
    if isinstance(error, json.JSONDecodeError):
        return f"line {error.lineno}, column {error.colno}: {error.msg}"
    if isinstance(error, RecursionError):
        return "is nested too deeply"
    return str(error)


# --- Fields: values taken only as written ------------------------------------------------------


def parse_day(value: object) -> dt.date:
    """Return the day ``value`` names: ``YYYY-MM-DD`` text, or a date ``yaml.safe_load`` already made."""
    if type(value) is dt.date:
        return value
    if isinstance(value, str) and ISO_DAY.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError("must be a real date written YYYY-MM-DD")


class Day(fields.Field):
    """A calendar day; see :func:`parse_day`."""

    def _deserialize(self, value, attr, data, **kwargs):
        return parse_day(value)


class Days(fields.Field):
    """One day, or each day of a range written ``{from: 2026-02-15, to: 2026-02-23}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, Mapping):
            return DayRangeSchema().load(value)
        return (parse_day(value),)


class Clock(fields.Field):
    """A local time written ``"HH:MM"``; quoted, because other YAML readers turn 22:00 into 1320."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and CLOCK.fullmatch(value):
            return dt.time.fromisoformat(value)
        raise ValidationError('must be a time written "HH:MM", for example "22:00"')


class Whole(fields.Field):
    """A whole number within bounds, written as one: ``true``, ``1.5`` and ``"10"`` are refused."""

    def __init__(self, low: int = 0, high: int = LARGEST, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not int or not self.low <= value <= self.high:
            raise ValidationError(f"must be a whole number from {self.low} to {self.high}")
        return value


class Flag(fields.Field):
    """``true`` or ``false``; never a truthy 1 or "yes"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise ValidationError("must be true or false")
        return value


class Percent(Whole):
    """A multiplier in whole percent: 150 means ×1.5; 0 means the condition earns nothing."""

    def __init__(self, **kwargs):
        super().__init__(0, MAX_PERCENT, **kwargs)


def text(**kwargs) -> fields.String:
    """A name or label: short enough to show, and not blank, since staff see it in every breakdown."""
    return fields.String(validate=[Length(1, MAX_TEXT_CHARS), Regexp(r"\s*\S", error="must not be blank")], **kwargs)


def code() -> fields.String:
    """A key that entries, tags and breakdowns refer to, so it stays plain ASCII and short."""
    message = "must be a code: a-z, then up to 39 of a-z, 0-9 or _ (for example night_patrol)"
    return fields.String(validate=Regexp(CODE, error=message), error_messages={"invalid": message})


def choice(enum: type[Enum], **kwargs) -> fields.Enum:
    """One of an enum's values, as documents write them (``hour``, not ``HOUR``)."""
    return fields.Enum(enum, by_value=True, error_messages={"unknown": "must be one of: {choices}"}, **kwargs)


def check_size(value: object, low: int, high: int) -> None:
    """Refuse a list or mapping by its length alone, before any of its items is read."""
    if isinstance(value, (list, tuple, Mapping)) and not low <= len(value) <= high:
        raise ValidationError(f"must have from {low} to {high} entries (it has {len(value)})")


class Bounded(fields.List):
    """A list refused by its length before its items are read, so a huge list costs nothing."""

    def __init__(self, inner: fields.Field, *, min_items: int = 0, max_items: int, **kwargs):
        super().__init__(inner, error_messages={"invalid": "must be a list"}, **kwargs)
        self.sizes = (min_items, max_items)

    def _deserialize(self, value, attr, data, **kwargs):
        check_size(value, *self.sizes)
        return super()._deserialize(value, attr, data, **kwargs)


class ChoiceSet(Bounded):
    """A set of choices written as a list; the canonical document lists it sorted."""

    def _deserialize(self, value, attr, data, **kwargs):
        return frozenset(super()._deserialize(value, attr, data, **kwargs))


class Thresholds(Bounded):
    """Star-level hours: positive and strictly increasing, every level out of order named.

    The rule of :func:`ledger.rewards.check_thresholds`, which stops at the first problem; here
    each level not above all the valid levels below it is listed, alongside levels that are not
    whole numbers at all.
    """

    def __init__(self, **kwargs):
        super().__init__(Whole(1), min_items=1, max_items=MAX_STAR_LEVELS, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        errors = {}
        try:
            levels = tuple(super()._deserialize(value, attr, data, **kwargs))
        except ValidationError as error:
            if not isinstance(error.messages, dict):
                raise
            errors, levels = error.messages, tuple(value)
        highest = 0
        for index, hours in enumerate(levels):
            if index not in errors:
                if hours <= highest:
                    errors[index] = ["must be more than the levels below it"]
                highest = max(highest, hours)
        if errors:
            raise ValidationError(errors)
        return levels


def fold(problem: dict) -> list | dict:
    """Merge marshmallow's ``key`` and ``value`` errors for one mapping entry into one entry."""
    key, value = problem.get("key", []), problem.get("value", [])
    if isinstance(value, dict):
        return {**value, SCHEMA: [*key, *value.get(SCHEMA, [])]}
    return [*key, *value]


class Keyed(fields.Dict):
    """A mapping keyed by code, returned frozen, with each entry's errors filed under its key.

    marshmallow files a mapping's errors under ``key`` and ``value`` sub-entries; rule-set paths
    read ``activity_types.patrol.points``, so both are folded into the entry's own path. With
    ``entry``, each value is built into that dataclass with its key as the ``code``.
    """

    def __init__(self, values, *, keys=None, min_items=0, max_items, entry=None, **kwargs):
        super().__init__(
            keys=keys or code(),
            values=values,
            error_messages={"invalid": "must be a mapping of keys to values"},
            **kwargs,
        )
        self.sizes = (min_items, max_items)
        self.entry = entry

    def _deserialize(self, value, attr, data, **kwargs):
        check_size(value, *self.sizes)
        try:
            loaded = super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as error:
            if isinstance(error.messages, dict):
                raise ValidationError({key: fold(problem) for key, problem in error.messages.items()}) from error
            raise
        if self.entry:
            loaded = {key: self.entry(code=key, **entry) for key, entry in loaded.items()}
        return frozen_mapping(loaded)


# --- Schemas: one per part of the document -----------------------------------------------------


class Strict(Schema):
    """Refuses unknown keys by name: a misspelt key must not silently fall back to a default."""

    error_messages = {
        "unknown": "is not a key here (check the spelling against docs/rules.md)",
        "type": "must be a mapping of keys to values",
    }

    class Meta:
        unknown = RAISE


class Section(Strict):
    """A part of the rule set built into the dataclass ``built``; a missing key keeps its default."""

    built: ClassVar[type]

    @post_load
    def build(self, data, **kwargs):
        return self.built(**data)


class LabelSchema(Section):
    built = Label
    zh = text(required=True)
    en = text(required=True)


class DayRangeSchema(Strict):
    first = Day(data_key="from", required=True)
    last = Day(data_key="to", required=True)

    @validates_schema
    def is_a_short_run(self, data, **kwargs):
        if not 0 <= (data["last"] - data["first"]).days < MAX_RANGE_DAYS:
            raise ValidationError(f"must be on or after `from`, at most {MAX_RANGE_DAYS} days in all", "to")

    @post_load
    def days(self, data, **kwargs):
        count = (data["last"] - data["first"]).days + 1
        return tuple(data["first"] + dt.timedelta(days=offset) for offset in range(count))


class ActivityTypeSchema(Strict):
    label = fields.Nested(LabelSchema, required=True)
    unit = choice(Unit, required=True)
    points = Whole(required=True)
    per_quantity = Whole(1)
    min_minutes = Whole(0, MINUTES_PER_DAY)
    round_to_minutes = Whole(1, MINUTES_PER_DAY)
    rounding = choice(Rounding)
    travel_counts = Flag()
    max_points = Whole(allow_none=True)
    categories = ChoiceSet(choice(Category), min_items=1, max_items=len(Category))
    counts_as_service = Flag()

    @validates_schema(skip_on_field_errors=False)
    def per_quantity_only_for_quantities(self, data, **kwargs):
        if data.get("per_quantity", 1) != 1 and data.get("unit", Unit.QUANTITY) is not Unit.QUANTITY:
            raise ValidationError("only a quantity type counts per quantity: leave it out", "per_quantity")


class NightSchema(Section):
    built = NightWindow
    starts = Clock(required=True)
    ends = Clock(required=True)
    percent = Percent(required=True)

    @validates_schema(skip_on_field_errors=False)
    def is_a_window(self, data, **kwargs):
        if "starts" in data and data.get("ends") == data["starts"]:
            raise ValidationError("must differ from starts", "ends")


class MultipliersSchema(Section):
    built = Multipliers
    weekend_percent = Percent()
    holiday_percent = Percent()
    night = fields.Nested(NightSchema, allow_none=True)
    tags = Keyed(Percent(), max_items=MAX_TAGS)
    categories = Keyed(Percent(), keys=choice(Category), max_items=len(Category))
    combine = choice(Combine)


class CalendarSchema(Strict):
    holidays = Bounded(Days(), max_items=MAX_CALENDAR_DAYS)
    workdays = Bounded(Days(), max_items=MAX_CALENDAR_DAYS)

    @validates_schema(skip_on_field_errors=False)
    def workdays_are_borrowed_weekend_days(self, data, **kwargs):
        holidays = set(chain.from_iterable(data.get("holidays", ())))
        errors: dict[Any, Any] = {}
        for index, days in enumerate(data.get("workdays", ())):
            problems = [f"{day} is also listed as a holiday" for day in days if day in holidays]
            problems += [
                f"{day} is a weekday: a make-up working day is a Saturday or Sunday"
                for day in days
                if day.weekday() < 5
            ]
            if problems:
                errors.setdefault("workdays", {})[index] = problems
        listed = len(holidays) + sum(map(len, data.get("workdays", ())))
        if listed > MAX_CALENDAR_DAYS:
            errors[SCHEMA] = [f"lists {listed} days; at most {MAX_CALENDAR_DAYS} are allowed"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def build(self, data, **kwargs):
        return Calendar(**{kind: frozenset(chain.from_iterable(runs)) for kind, runs in data.items()})


class CapsSchema(Section):
    built = Caps
    hours_per_day = Whole(1, 24, allow_none=True)
    points_per_activity = Whole(allow_none=True)
    points_per_month = Whole(allow_none=True)
    points_per_year = Whole(allow_none=True)


class PartyMembersSchema(Section):
    built = PartyMemberRequirement
    min_activities = Whole()
    min_hours = Whole()


class PenaltiesSchema(Section):
    built = Penalties
    order_not_delivered = Whole()
    unexcused_absence = Whole()
    below_zero = choice(BelowZero)


class ExpirySchema(Section):
    built = Expiry
    policy = choice(ExpiryPolicy)
    months = Whole(1, 120, allow_none=True)

    @validates_schema
    def months_go_with_their_policy(self, data, **kwargs):
        counts_months = data.get("policy") is ExpiryPolicy.MONTHS_AFTER_EARNED
        if counts_months and data.get("months") is None:
            raise ValidationError("is required when the policy is months_after_earned", "months")
        if not counts_months and data.get("months") is not None:
            raise ValidationError("applies only when the policy is months_after_earned", "months")


class StarLevelsSchema(Section):
    built = StarLevels
    hours = Thresholds()
    per_year_hours = Thresholds(allow_none=True)


class TitleSchema(Strict):
    label = fields.Nested(LabelSchema, required=True)
    category = choice(Category, required=True)
    min_hours = Whole(allow_none=True)
    min_points = Whole(allow_none=True)
    min_activities = Whole(allow_none=True)
    max_rank = Whole(1, allow_none=True)
    top_percent = Whole(1, 100, allow_none=True)
    scope = choice(RankScope)
    requires_party_requirement = Flag()

    @validates_schema(skip_on_field_errors=False)
    def party_requirement_only_for_party_members(self, data, **kwargs):
        if (
            data.get("requires_party_requirement")
            and data.get("category", Category.PARTY_MEMBER) is not Category.PARTY_MEMBER
        ):
            raise ValidationError("applies only to a party_member title", "requires_party_requirement")


class RuleSetSchema(Section):
    built = RuleSet
    name = text(required=True)
    effective_from = Day(required=True)
    effective_to = Day(allow_none=True, load_default=None)
    activity_types = Keyed(
        fields.Nested(ActivityTypeSchema), min_items=1, max_items=MAX_ACTIVITY_TYPES, entry=ActivityType, required=True
    )
    multipliers = fields.Nested(MultipliersSchema)
    calendar = fields.Nested(CalendarSchema)
    caps = fields.Nested(CapsSchema)
    party_members = fields.Nested(PartyMembersSchema)
    penalties = fields.Nested(PenaltiesSchema)
    expiry = fields.Nested(ExpirySchema)
    star_levels = fields.Nested(StarLevelsSchema)
    titles = Keyed(fields.Nested(TitleSchema), max_items=MAX_TITLES, entry=Title)

    @validates_schema(skip_on_field_errors=False)
    def period_runs_forwards(self, data, **kwargs):
        if data.get("effective_to") and "effective_from" in data and data["effective_to"] < data["effective_from"]:
            raise ValidationError("must be on or after effective_from", "effective_to")


# --- Public API ---------------------------------------------------------------------------------


def dotted(messages: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Yield ``(dotted path, message)`` from marshmallow's nested errors; ``_schema`` names its parent."""
    if isinstance(messages, dict):
        for key, inner in messages.items():
            yield from dotted(inner, path if key == SCHEMA else (*path, str(key)))
    else:
        for message in messages:
            yield ".".join(path) or "document", message


def load_rule_set(document: object) -> RuleSet:
    """Validate an already-parsed document (a dict from YAML or JSON) and build its rule set."""
    try:
        return RuleSetSchema().load(document)
    except ValidationError as error:
        errors: dict[str, list[str]] = {}
        for path, message in sorted(dotted(error.messages)):
            errors.setdefault(path, []).append(message)
        raise RuleSetInvalid(errors) from error


def parse_rule_set(text: str, *, format: str = "yaml") -> RuleSet:
    """Read a rule-set document from YAML (safe loader) or JSON text and validate it."""
    if format not in READERS:
        raise InvalidInput("must be yaml or json", field="format")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise RuleSetInvalid({"document": [f"is longer than {MAX_DOCUMENT_CHARS} characters"]})
    try:
        document = READERS[format](text)
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise RuleSetInvalid({"document": [syntax_message(error)]}) from error
    return load_rule_set(document)


def dump_rule_set(rule_set: RuleSet) -> dict:
    """Return the canonical document of ``rule_set``: every key written out, JSON-able, sets sorted."""
    return plain(rule_set)


def plain(value: object) -> Any:
    """Turn a rule-set value into dicts, lists, text, numbers, booleans and ``None``."""
    if is_dataclass(value):
        # Activity types and titles are stored under their code, so it is not repeated inside.
        return {item.name: plain(getattr(value, item.name)) for item in dataclass_fields(value) if item.name != "code"}
    if isinstance(value, Mapping):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item) for item in value)
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return value


def default_rules_text() -> str:
    """Return the default rule document shipped with the product (``ledger/default_rules.yaml``)."""
    return resources.files("ledger").joinpath("default_rules.yaml").read_text(encoding="utf-8")


@cache
def default_rule_set() -> RuleSet:
    """Return the default rule set, read once: a rule set is immutable, so sharing it is safe."""
    return parse_rule_set(default_rules_text())
