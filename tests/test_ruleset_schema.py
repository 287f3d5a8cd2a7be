"""Rule-set documents: the default reads, documents round-trip, and a bad document is refused
with every problem named by its dotted path. Pure: no database, no Flask."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput, RuleSetInvalid
from ledger.ruleset_schema import (
    LARGEST,
    MAX_ACTIVITY_TYPES,
    MAX_CALENDAR_DAYS,
    MAX_DOCUMENT_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLES,
    default_rule_set,
    default_rules_text,
    dump_rule_set,
    load_rule_set,
    parse_rule_set,
)
from ledger.rulesets import (
    ALL_CATEGORIES,
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

MINIMAL = """\
name: 测试规则
effective_from: 2026-01-01
activity_types:
  patrol:
    label: {zh: 巡逻, en: Patrol}
    unit: hour
    points: 10
"""

#: Marks a key to remove in :func:`changed`.
REMOVE = object()


def changed(path: str, value: object) -> dict:
    """Return the default rule set's document with the value at a dotted path set (or removed)."""
    document = copy.deepcopy(dump_rule_set(default_rule_set()))
    *parents, last = [int(step) if step.isdigit() else step for step in path.split(".")]
    target = document
    for step in parents:
        target = target[step]
    if value is REMOVE:
        del target[last]
    else:
        target[last] = value
    return document


def refusal(document: object) -> RuleSetInvalid:
    with pytest.raises(RuleSetInvalid) as refused:
        load_rule_set(document)
    return refused.value


def parse_refusal(text: str, format: str = "yaml") -> RuleSetInvalid:
    with pytest.raises(RuleSetInvalid) as refused:
        parse_rule_set(text, format=format)
    return refused.value


# --- The default rule set -------------------------------------------------------------------


def test_the_default_rule_set_parses_with_every_required_activity_type():
    rule_set = default_rule_set()
    assert rule_set.effective_from == dt.date(2025, 1, 1) and rule_set.effective_to is None
    assert {
        "volunteer_service", "patrol", "micro_wish", "policy_publicity", "dispute_mediation",
        "environment_cleanup", "emergency_duty", "elderly_care", "unit_report_in", "unit_agreement",
        "unit_claim", "unit_staff_sent", "unit_donation", "unit_project_completed",
    } <= set(rule_set.activity_types)  # fmt: skip
    assert set(rule_set.titles) == {"excellent_volunteer", "excellent_party_member", "excellent_unit"}


def test_co_building_unit_types_are_for_units_only_and_are_not_service_time():
    unit_types = [kind for code, kind in default_rule_set().activity_types.items() if code.startswith("unit_")]
    assert len(unit_types) == 6
    assert all(kind.categories == {Category.UNIT} and not kind.counts_as_service for kind in unit_types)
    donation = default_rule_set().activity_types["unit_donation"]
    assert (donation.unit, donation.points, donation.per_quantity) == (Unit.QUANTITY, 1, 100)


def test_the_default_multipliers_do_not_stack_and_night_runs_from_ten_to_six():
    multipliers = default_rule_set().multipliers
    assert multipliers.combine is Combine.HIGHEST
    assert multipliers.night == NightWindow(dt.time(22), dt.time(6), 120)
    assert multipliers.tags == {"emergency": 200}


#: The State Council holiday schedules for 2025 and 2026: (first day, last day) of each run.
HOLIDAY_RUNS = [
    ("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
    ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08"),
    ("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
]  # fmt: skip
MAKE_UP_WORKDAYS = [
    "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
    "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10",
]  # fmt: skip


def test_the_default_calendar_is_the_2025_and_2026_holiday_schedule():
    expected = set()
    for first, last in HOLIDAY_RUNS:
        day, last_day = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while day <= last_day:
            expected.add(day)
            day += dt.timedelta(days=1)
    calendar = default_rule_set().calendar
    assert calendar.holidays == expected
    assert calendar.workdays == {dt.date.fromisoformat(day) for day in MAKE_UP_WORKDAYS}
    assert "国务院办公厅" in default_rules_text()


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        pytest.param(dt.date(2026, 1, 4), "workday", id="Sunday 2026-01-04 is a make-up workday"),
        pytest.param(dt.date(2026, 2, 14), "workday", id="Saturday 2026-02-14 is a make-up workday"),
        pytest.param(dt.date(2026, 10, 3), "holiday", id="Saturday 2026-10-03 is a holiday, not a weekend"),
        pytest.param(dt.date(2026, 2, 16), "holiday", id="Monday 2026-02-16 is a holiday"),
        pytest.param(dt.date(2026, 3, 7), "weekend", id="Saturday 2026-03-07 is a weekend"),
        pytest.param(dt.date(2026, 3, 9), "workday", id="Monday 2026-03-09 is a workday"),
    ],
)
def test_the_default_calendar_tells_holidays_weekends_and_workdays_apart(day, kind):
    assert default_rule_set().calendar.day_kind(day) == kind


def test_the_default_keeps_its_caps_party_requirement_penalties_expiry_and_star_levels():
    rule_set = default_rule_set()
    assert rule_set.caps == Caps(hours_per_day=8, points_per_activity=100, points_per_month=300, points_per_year=2400)
    assert rule_set.party_members == PartyMemberRequirement(min_activities=4, min_hours=12)
    assert rule_set.penalties == Penalties(order_not_delivered=10, unexcused_absence=5, below_zero=BelowZero.SKIP)
    assert rule_set.expiry == Expiry(ExpiryPolicy.END_OF_FOLLOWING_YEAR)
    assert rule_set.star_levels == StarLevels((100, 300, 600, 1000, 1500), (20, 50, 100, 150, 200))
    assert rule_set.titles["excellent_party_member"].requires_party_requirement


def test_the_default_also_loads_from_what_yaml_safe_load_makes_of_it():
    assert load_rule_set(yaml.safe_load(default_rules_text())) == default_rule_set()


def test_a_minimal_document_takes_every_other_value_from_the_defaults():
    rule_set = parse_rule_set(MINIMAL)
    assert rule_set == RuleSet(
        name="测试规则",
        effective_from=dt.date(2026, 1, 1),
        effective_to=None,
        activity_types={"patrol": ActivityType("patrol", Label("巡逻", "Patrol"), Unit.HOUR, 10)},
    )
    assert rule_set.activity_types["patrol"].categories == ALL_CATEGORIES


# --- The canonical document -------------------------------------------------------------------


def assert_plain(value: object) -> None:
    """Assert ``value`` is made of JSON's own types only (no tuples, enums, dates or sets)."""
    assert type(value) in (dict, list, str, int, bool, type(None)), value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        assert_plain(key)
        assert_plain(child)


def test_the_dump_writes_days_times_and_sets_as_text_and_sorted_lists():
    document = dump_rule_set(default_rule_set())
    assert_plain(document)
    assert document["effective_from"] == "2025-01-01" and document["effective_to"] is None
    assert document["multipliers"]["night"] == {"starts": "22:00", "ends": "06:00", "percent": 120}
    assert document["calendar"]["workdays"][:2] == ["2025-01-26", "2025-02-08"]
    assert document["activity_types"]["patrol"]["categories"] == ["party_member", "volunteer"]
    assert "code" not in document["activity_types"]["patrol"]


codes = st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True)
texts = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=MAX_TEXT_CHARS)
labels = st.builds(Label, texts, texts)
amounts = st.integers(0, LARGEST)
percents = st.integers(0, 1000)
days = st.dates(dt.date(2000, 1, 1), dt.date(2100, 12, 31))
times = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
ladders = st.lists(st.integers(1, LARGEST), min_size=1, max_size=10, unique=True).map(
    lambda hours: tuple(sorted(hours))
)


def optional(strategy):
    return st.none() | strategy


@st.composite
def activity_types(draw, code: str) -> ActivityType:
    unit = draw(st.sampled_from(Unit))
    return ActivityType(
        code=code,
        label=draw(labels),
        unit=unit,
        points=draw(amounts),
        per_quantity=draw(st.integers(1, LARGEST)) if unit is Unit.QUANTITY else 1,
        min_minutes=draw(st.integers(0, 1440)),
        round_to_minutes=draw(st.integers(1, 1440)),
        rounding=draw(st.sampled_from(Rounding)),
        travel_counts=draw(st.booleans()),
        max_points=draw(optional(amounts)),
        categories=draw(st.frozensets(st.sampled_from(Category), min_size=1)),
        counts_as_service=draw(st.booleans()),
    )


@st.composite
def titles(draw, code: str) -> Title:
    category = draw(st.sampled_from(Category))
    return Title(
        code=code,
        label=draw(labels),
        category=category,
        min_hours=draw(optional(amounts)),
        min_points=draw(optional(amounts)),
        min_activities=draw(optional(amounts)),
        max_rank=draw(optional(st.integers(1, LARGEST))),
        top_percent=draw(optional(st.integers(1, 100))),
        scope=draw(st.sampled_from(RankScope)),
        requires_party_requirement=category is Category.PARTY_MEMBER and draw(st.booleans()),
    )


@st.composite
def keyed(draw, entries, *, min_size: int = 0):
    """A frozen mapping of codes to entries built with their code."""
    return frozen_mapping(
        {code: draw(entries(code)) for code in draw(st.lists(codes, min_size=min_size, max_size=4, unique=True))}
    )


@st.composite
def calendars(draw) -> Calendar:
    holidays = draw(st.frozensets(days, max_size=20))
    weekend_days = draw(st.frozensets(days.filter(lambda day: day.weekday() >= 5), max_size=10))
    return Calendar(holidays, weekend_days - holidays)


@st.composite
def rule_sets(draw) -> RuleSet:
    start = draw(days)
    return RuleSet(
        name=draw(texts),
        effective_from=start,
        effective_to=draw(optional(st.dates(start, dt.date(2100, 12, 31)))),
        activity_types=draw(keyed(activity_types, min_size=1)),
        multipliers=draw(
            st.builds(
                Multipliers,
                weekend_percent=percents,
                holiday_percent=percents,
                night=optional(
                    st.builds(NightWindow, times, times, percents).filter(lambda night: night.starts != night.ends)
                ),
                tags=st.dictionaries(codes, percents, max_size=3).map(frozen_mapping),
                categories=st.dictionaries(st.sampled_from(Category), percents).map(frozen_mapping),
                combine=st.sampled_from(Combine),
            )
        ),
        calendar=draw(calendars()),
        caps=draw(
            st.builds(Caps, optional(st.integers(1, 24)), optional(amounts), optional(amounts), optional(amounts))
        ),
        party_members=draw(st.builds(PartyMemberRequirement, amounts, amounts)),
        penalties=draw(st.builds(Penalties, amounts, amounts, st.sampled_from(BelowZero))),
        expiry=draw(
            st.builds(Expiry, st.sampled_from([ExpiryPolicy.NEVER, ExpiryPolicy.END_OF_FOLLOWING_YEAR]))
            | st.builds(Expiry, st.just(ExpiryPolicy.MONTHS_AFTER_EARNED), st.integers(1, 120))
        ),
        star_levels=draw(st.builds(StarLevels, ladders, optional(ladders))),
        titles=draw(keyed(titles)),
    )


@given(rule_sets())
def test_any_rule_set_dumps_to_plain_data_that_loads_back_equal(rule_set):
    document = dump_rule_set(rule_set)
    assert_plain(document)
    assert load_rule_set(document) == rule_set


@settings(max_examples=30)
@given(rule_sets())
def test_any_rule_set_survives_being_written_as_json_or_yaml_text(rule_set):
    document = dump_rule_set(rule_set)
    assert parse_rule_set(json.dumps(document, ensure_ascii=False), format="json") == rule_set
    assert parse_rule_set(yaml.safe_dump(document, allow_unicode=True)) == rule_set


# --- Refusals ------------------------------------------------------------------------------------

PATROL = dump_rule_set(default_rule_set())["activity_types"]["patrol"]


#: Invalid documents refused at the path they change: (what is wrong, dotted path, new value).
REFUSED_AT_THEIR_PATH = [
    ("negative points", "activity_types.patrol.points", -1),
    ("points written as true", "activity_types.patrol.points", True),
    ("points written as 1.5", "activity_types.patrol.points", 1.5),
    ("points written as text", "activity_types.patrol.points", "10"),
    ("points beyond the largest amount", "activity_types.patrol.points", LARGEST + 1),
    ("points missing", "activity_types.patrol.points", REMOVE),
    ("a misspelt key", "activity_types.patrol.pointz", 10),
    ("an unknown unit", "activity_types.patrol.unit", "minute"),
    ("an unknown rounding", "activity_types.patrol.rounding", "sideways"),
    ("rounding to zero minutes", "activity_types.patrol.round_to_minutes", 0),
    ("a minimum over a day", "activity_types.patrol.min_minutes", 1441),
    ("per_quantity on an hour type", "activity_types.patrol.per_quantity", 5),
    ("per_quantity of zero", "activity_types.unit_donation.per_quantity", 0),
    ("a flag written as no", "activity_types.patrol.travel_counts", "no"),
    ("a flag written as 0", "activity_types.patrol.travel_counts", 0),
    ("an activity type nobody may earn with", "activity_types.patrol.categories", []),
    ("a label without English", "activity_types.patrol.label.en", REMOVE),
    ("a label too long", "activity_types.patrol.label.zh", "x" * (MAX_TEXT_CHARS + 1)),
    ("an activity code with a capital", "activity_types.Patrol", PATROL),
    ("an activity type left empty", "activity_types.patrol", None),
    ("no activity types", "activity_types", {}),
    ("activity types missing", "activity_types", REMOVE),
    ("name missing", "name", REMOVE),
    ("a blank name", "name", "   "),
    ("a date not written YYYY-MM-DD", "effective_from", "2025/01/01"),
    ("effective_to before effective_from", "effective_to", "2024-12-31"),
    ("a percent over 1000", "multipliers.weekend_percent", 1001),
    ("an unknown way to combine", "multipliers.combine", "add"),
    ("a night start that is no time", "multipliers.night.starts", "24:00"),
    ("a night start YAML read as a number", "multipliers.night.starts", 1320),
    ("a night that ends when it starts", "multipliers.night.ends", "22:00"),
    ("a tag that is not a code", "multipliers.tags.Emergency", 200),
    ("a multiplier for an unknown category", "multipliers.categories.resident", 100),
    ("a holiday that is no real date", "calendar.holidays.0", "2026-02-30"),
    ("a day both holiday and make-up workday", "calendar.workdays.0", "2026-01-03"),
    ("a make-up workday on a Monday", "calendar.workdays.0", "2026-03-09"),
    ("too many calendar entries", "calendar.holidays", ["2026-03-02"] * (MAX_CALENDAR_DAYS + 1)),
    ("more than 24 hours a day", "caps.hours_per_day", 25),
    ("zero hours a day", "caps.hours_per_day", 0),
    ("a negative monthly cap", "caps.points_per_month", -300),
    ("caps written as null", "caps", None),
    ("an unknown below-zero rule", "penalties.below_zero", "borrow"),
    ("an unknown expiry policy", "expiry.policy", "sometimes"),
    ("no star levels", "star_levels.hours", []),
    ("a party requirement on a unit title", "titles.excellent_unit.requires_party_requirement", True),
    ("an unknown scope", "titles.excellent_unit.scope", "city"),
    ("an unknown title category", "titles.excellent_unit.category", "company"),
    ("a share over 100 percent", "titles.excellent_volunteer.top_percent", 101),
    ("rank zero", "titles.excellent_volunteer.max_rank", 0),
    ("a title without category", "titles.excellent_volunteer.category", REMOVE),
]

#: Invalid documents refused at other paths: (what is wrong, dotted path, new value, refused at).
REFUSED_ELSEWHERE = [
    ("an unknown category", "activity_types.patrol.categories", ["resident"], ["activity_types.patrol.categories.0"]),
    (
        "a backwards range",
        "calendar.holidays.1",
        {"from": "2025-02-04", "to": "2025-01-28"},
        ["calendar.holidays.1.to"],
    ),
    (
        "a year-long range",
        "calendar.holidays.1",
        {"from": "2025-01-01", "to": "2025-12-31"},
        ["calendar.holidays.1.to"],
    ),
    (
        "a range without to, with a key it does not know",
        "calendar.holidays.1",
        {"from": "2025-01-28", "until": "2025-02-04"},
        ["calendar.holidays.1.to", "calendar.holidays.1.until"],
    ),
    ("months missing for months_after_earned", "expiry", {"policy": "months_after_earned"}, ["expiry.months"]),
    ("months without months_after_earned", "expiry", {"policy": "never", "months": 12}, ["expiry.months"]),
    ("over ten years", "expiry", {"policy": "months_after_earned", "months": 121}, ["expiry.months"]),
    ("a star level equal to the one below", "star_levels.hours", [100, 300, 300], ["star_levels.hours.2"]),
    ("a star level at zero hours", "star_levels.hours", [0, 100], ["star_levels.hours.0"]),
    ("two levels below the first", "star_levels.hours", [300, 100, 200], ["star_levels.hours.1", "star_levels.hours.2"]),
]


@pytest.mark.parametrize(
    ("path", "value", "refused_at"),
    [pytest.param(path, value, [path], id=wrong) for wrong, path, value in REFUSED_AT_THEIR_PATH]
    + [pytest.param(path, value, refused_at, id=wrong) for wrong, path, value, refused_at in REFUSED_ELSEWHERE],
)
def test_an_invalid_document_is_refused_at_the_dotted_path_of_the_problem(path, value, refused_at):
    error = refusal(changed(path, value))
    assert list(error.errors) == refused_at
    assert error.code == "rule_set_invalid" and error.http_status == 422 and isinstance(error, InvalidInput)


@pytest.mark.parametrize(
    ("section", "limit", "entry"),
    [
        pytest.param("activity_types", MAX_ACTIVITY_TYPES, PATROL, id="activity types"),
        pytest.param(
            "titles", MAX_TITLES, {"label": {"zh": "称号", "en": "Title"}, "category": "volunteer"}, id="titles"
        ),
    ],
)
def test_a_document_with_too_many_entries_is_refused_before_they_are_read(section, limit, entry):
    document = changed(section, {f"kind_{index}": entry for index in range(limit + 1)})
    assert refusal(document).errors == {
        section: [f"must have from {int(section == 'activity_types')} to {limit} entries (it has {limit + 1})"]
    }


def test_a_document_with_several_problems_lists_every_one():
    document = changed("activity_types.patrol.points", -1)
    document["caps"]["hours_per_day"] = 25
    document["calendar"]["holidays"][3] = "2026-02-30"
    document["titles"]["excellent_unit"]["scope"] = "city"
    document["stars"] = [1, 2, 3]
    del document["name"]
    error = refusal(document)
    expected = [
        "activity_types.patrol.points", "calendar.holidays.3", "caps.hours_per_day", "name", "stars",
        "titles.excellent_unit.scope",
    ]  # fmt: skip
    assert list(error.errors) == expected
    assert all(path in str(error) for path in expected)


@pytest.mark.parametrize("document", [None, [], "rules", 42], ids=["null", "a list", "text", "a number"])
def test_a_document_that_is_not_a_mapping_is_refused_as_a_whole(document):
    assert list(refusal(document).errors) == ["document"]


# --- Reading text ---------------------------------------------------------------------------------


def test_a_python_tag_is_refused_by_the_safe_loader_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    text = MINIMAL.replace("name: 测试规则", f'name: !!python/object/apply:os.system ["echo hi > {marker}"]')
    error = parse_refusal(text)
    assert not marker.exists()
    assert list(error.errors) == ["document"]
    assert error.errors["document"][0].startswith("line 1, column 7: could not determine a constructor")


@pytest.mark.parametrize(
    ("text", "format", "message"),
    [
        pytest.param(
            MINIMAL + "titles: {a: [1, 2}\n",
            "yaml",
            "line 8, column 18: while parsing a flow sequence",
            id="an unclosed YAML list",
        ),
        pytest.param(
            MINIMAL + "name: 另一个\n", "yaml", "line 8, column 1: the key 'name' is written twice", id="a key twice"
        ),
        pytest.param(
            MINIMAL + "---\nname: x\n",
            "yaml",
            "line 8, column 1: expected a single document in the stream",
            id="two documents",
        ),
        pytest.param('{"name": "x",\n "effective_from": }', "json", "line 2, column 20: ", id="broken JSON"),
        pytest.param("[" * 100_000, "yaml", "is nested too deeply", id="deep YAML"),
        pytest.param("[" * 100_000, "json", "is nested too deeply", id="deep JSON"),
        pytest.param("#" * (MAX_DOCUMENT_CHARS + 1), "yaml", "is longer than", id="a huge document"),
    ],
)
def test_text_that_cannot_be_read_is_refused_saying_where(text, format, message):
    [problem] = parse_refusal(text, format).errors["document"]
    assert problem.startswith(message)


@pytest.mark.parametrize(
    ("line", "path", "value"),
    [
        pytest.param("  night: {starts: 22:00, ends: 06:00, percent: 120}", "multipliers.night.starts", dt.time(22)),
        pytest.param("  weekend_percent: 0120", "multipliers.weekend_percent", None),
        pytest.param("  weekend_percent: 0x78", "multipliers.weekend_percent", None),
        pytest.param("  weekend_percent: 1_20", "multipliers.weekend_percent", None),
        pytest.param("  combine: yes", "multipliers.combine", None),
    ],
    ids=["a bare time is a time", "a leading zero", "hexadecimal", "digit groups", "yes is text"],
)
def test_yaml_1_1_guesses_are_not_made(line, path, value):
    text = f"{MINIMAL}multipliers:\n{line}\n"
    if value is None:
        assert list(parse_refusal(text).errors) == [path]
    else:
        assert parse_rule_set(text).multipliers.night.starts == value


def test_json_documents_read_the_same_as_yaml():
    text = json.dumps(dump_rule_set(default_rule_set()), ensure_ascii=False)
    assert parse_rule_set(text, format="json") == default_rule_set()


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


@pytest.mark.parametrize("example", re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S))
def test_every_yaml_example_in_the_rules_guide_reads_as_part_of_a_rule_set(example):
    if example.startswith("name:"):
        text = example
    elif example.startswith("activity_types:"):
        text = MINIMAL.split("activity_types:")[0] + example
    else:
        text = MINIMAL + example
    assert isinstance(parse_rule_set(text), RuleSet)


def test_an_unknown_format_is_refused_naming_the_argument():
    with pytest.raises(InvalidInput) as refused:
        parse_rule_set(MINIMAL, format="toml")
    assert refused.value.field == "format" and not isinstance(refused.value, RuleSetInvalid)
