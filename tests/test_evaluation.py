"""The annual evaluation's pure rows: what each cell says, why a title is or is not earned, what changed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.evaluation import (
    FEEDBACK_SHEET,
    OTHER_KIND,
    ROW,
    Change,
    Column,
    FeedbackMember,
    Kind,
    ParticipantYear,
    SheetSpec,
    TitleStanding,
    UnitYear,
    compare,
    display,
    feedback_table,
    hours,
    participant_cells,
    participant_sheet,
    percent,
    reason,
    unit_cells,
    unit_sheet,
)
from ledger.rulesets import Category, Label
from ledger.ruleset_schema import default_rules_text, parse_rule_set

RULES = parse_rule_set(default_rules_text())


def volunteer(**changes) -> ParticipantYear:
    values = dict(
        participant_id=7,
        name="李明",
        category=Category.VOLUNTEER,
        community="幸福社区",
        grid="第一网格",
        points_earned=400,
        points_spent=50,
        points_expired=10,
        service_minutes=60 * 60,
        activities=12,
        balance=340,
        lifetime_minutes=101 * 60,
        rank_grid=1,
        rank_community=2,
        rank_org=3,
        titles={"excellent_volunteer": TitleStanding(1, 10), "excellent_party_member": None, "excellent_unit": None},
    )
    values.update(changes)
    return ParticipantYear(**values)


def cells_by_code(record: ParticipantYear) -> dict:
    spec = participant_sheet(RULES)
    return dict(zip((column.code for column in spec.columns), participant_cells(record, RULES)))


def test_a_participant_row_holds_the_year_the_ranks_the_star_level_and_each_title():
    row = cells_by_code(volunteer())
    assert row["points_earned"] == 400 and row["balance"] == 340 and row["service_minutes"] == 3600
    assert (row["rank_grid"], row["rank_community"], row["rank_org"]) == (1, 2, 3)
    assert row["star_level"] == 1  # 101 hours by the year's end: past the 100-hour first star
    assert row["title:excellent_volunteer"] is True
    assert row["title:excellent_volunteer:reason"] == [
        ["min_hours", 3000, 3600, True],
        ["min_points", 300, 400, True],
        ["min_activities", 10, 12, True],
        ["top_percent", 1, 1, True],
    ]
    assert row["title:excellent_unit"] is None and row["title:excellent_unit:reason"] is None


def test_someone_with_no_record_in_the_year_is_not_eligible_and_is_told_so():
    row = cells_by_code(volunteer(titles={"excellent_volunteer": TitleStanding(None, 10)}, rank_org=None))
    assert row["title:excellent_volunteer"] is False
    assert reason(row["title:excellent_volunteer:reason"], "zh") == "本年度无积分记录"


def test_the_reason_names_each_criterion_and_by_how_much_it_was_missed():
    criteria = [["min_hours", 3000, 1170, False], ["min_points", 300, 310, True], ["top_percent", 2, 5, False]]
    assert reason(criteria, "zh") == "服务时长 19.50 小时（需 50.00 小时），差 30.50 小时；积分 310（需 300）；排名第 5（需前 2 名），差 3 名"
    assert reason(criteria, "en") == "hours 19.50 (needs 50.00), short by 30.50; points 310 (needs 300); rank 5 (needs 2 or better), 3 places short"
    assert reason([["party_requirement", 1, 0, False]], "en") == "yearly requirement not met"


@pytest.mark.parametrize(("minutes", "shown"), [(0, "0.00"), (90, "1.50"), (20, "0.33"), (50, "0.83"), (-30, "-0.50")])
def test_minutes_are_shown_as_hours_to_the_hundredth_without_floats(minutes, shown):
    assert hours(minutes) == Decimal(shown)


def test_a_share_is_a_percentage_to_the_tenth_and_nothing_without_a_denominator():
    assert (percent(5, 6), percent(0, 3), percent(3, 3), percent(1, 0), percent(1, None)) == ("83.3%", "0.0%", "100.0%", None, None)


@pytest.mark.parametrize(
    ("kind", "value", "zh", "en"),
    [
        (Kind.YES_NO, True, "是", "Yes"),
        (Kind.CODE, "party_member", "在职党员", "Party member"),
        (Kind.CODE, "unknown_code", "unknown_code", "unknown_code"),
        (Kind.HOURS, 150, Decimal("2.50"), Decimal("2.50")),
        (Kind.RATIO, [1, 3], "33.3%", "33.3%"),
        (Kind.NUMBER, None, None, None),
    ],
)
def test_a_stored_cell_is_shown_in_either_language(kind, value, zh, en):
    assert (display(kind, value, "zh"), display(kind, value, "en")) == (zh, en)


def test_a_sheet_shows_its_headers_in_the_language_asked_and_refuses_others():
    spec = participant_sheet(RULES)
    assert spec.headers("zh")[:3] == ["编号", "姓名/名称", "类别"]
    assert "优秀志愿者资格" in spec.headers("zh") and "Excellent volunteer: why" in spec.headers("en")
    with pytest.raises(InvalidInput) as refused:
        spec.headers("fr")
    assert refused.value.field == "language"


def test_a_sheet_spec_survives_being_stored_as_json():
    spec = participant_sheet(RULES)
    assert SheetSpec.from_json(spec.to_json()) == spec


def test_a_unit_row_has_its_points_by_kind_of_the_rules_and_the_rest_as_other():
    record = UnitYear(9, "城东物业", "property_company", "幸福社区", dt.date(2021, 5, 8), {"unit_report_in": 50, "old_kind": 20}, 3, 2)
    spec = unit_sheet(RULES)
    row = dict(zip((column.code for column in spec.columns), unit_cells(record, RULES)))
    assert row["points:unit_report_in"] == 50 and row["points:unit_claim"] == 0 and row[f"points:{OTHER_KIND}"] == 20
    assert (row["points_total"], row["projects_claimed"], row["projects_completed"]) == (70, 3, 2)
    assert spec.display(unit_cells(record, RULES), "zh")[2] == "物业公司"


def test_an_employers_feedback_ends_with_its_counts_and_rates():
    members = [
        FeedbackMember("王芳", "幸福社区", dt.date(2024, 3, 1), 5, 13 * 60, 2, 1, "积极参加"),
        FeedbackMember("赵强", "和平社区", dt.date(2025, 6, 1), 1, 60, 0, 0, None),
    ]
    table = feedback_table("示范区税务局", iter(members), 4, RULES, "zh")
    rows = list(table.rows)
    assert table.headers == FEEDBACK_SHEET.headers("zh")
    assert rows[0] == ["王芳", "幸福社区", "2024-03-01", 5, Decimal("13.00"), 2, 1, "是", "积极参加"]
    assert rows[1][7] == "否" and rows[2] == []
    assert dict(map(tuple, rows[3:])) == {
        "报到人数": 2,
        "在职党员总数": 4,
        "报到率": "50.0%",
        "完成年度要求人数": 1,
        "完成率": "50.0%",
        "认领需求": 2,
        "完成需求": 1,
        "需求完成率": "50.0%",
    }


def test_an_employer_that_never_said_how_many_it_employs_has_no_report_in_rate():
    rows = list(feedback_table("某公司", iter([]), None, RULES, "en").rows)
    assert ["Report-in rate", None] in rows and ["Completion rate", None] in rows


SPEC = SheetSpec("s", Label("表", "Sheet"), (Column("a", Label("甲", "A")), Column("b", Label("乙", "B"))))
sheet_rows = st.dictionaries(st.integers(1, 30), st.lists(st.integers(0, 3), min_size=2, max_size=2), max_size=12)


@given(frozen=sheet_rows, current=sheet_rows)
def test_compare_lists_exactly_the_cells_and_rows_that_differ(frozen, current):
    changes = list(compare("s", SPEC, sorted(frozen.items()), SPEC, sorted(current.items())))
    expected = []
    for participant_id in sorted(set(frozen) | set(current)):
        if participant_id not in current:
            expected.append(Change("s", participant_id, ROW, "present", "absent"))
        elif participant_id not in frozen:
            expected.append(Change("s", participant_id, ROW, "absent", "present"))
        else:
            expected += [
                Change("s", participant_id, code, old, new)
                for code, old, new in zip("ab", frozen[participant_id], current[participant_id])
                if old != new
            ]
    assert changes == expected


def test_compare_matches_columns_by_code_so_a_new_title_shows_as_a_change():
    wider = SheetSpec("s", SPEC.title, (*SPEC.columns, Column("c", Label("丙", "C"))))
    assert list(compare("s", SPEC, [(1, [1, 2])], wider, [(1, [1, 2, 5])])) == [Change("s", 1, "c", None, 5)]

