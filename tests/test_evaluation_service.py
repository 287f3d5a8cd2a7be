"""The annual evaluation from the database: totals match the ledger, freezes hold, changes are listed."""

from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from ledger.annual import (
    AlreadyFrozen,
    changes_since_freeze,
    employer_feedback,
    evaluation,
    freeze_evaluation,
    live_evaluation,
    set_party_members_employed,
    tables,
    write_remark,
)
from ledger.errors import AppendOnlyViolation, InvalidInput, NotFound
from ledger.evaluation import ROW, Change, feedback_table
from ledger.exports import write_xlsx
from ledger.models import (
    Account,
    AppUser,
    EvaluationFreezeRow,
    EvaluationFreezeRuleSet,
    OrgNode,
    Participant,
    Posting,
    utc_now,
)
from ledger.participants import register_employer_unit
from ledger.rankings import title_reports
from ledger.transactions import participant_account
from tests.evaluation_fixtures import FROZEN_AT, TODAY, correct_alices_patrol, season  # noqa: F401 - the fixture

def sheets_of(result) -> dict[str, list[dict]]:
    """Return every sheet's rows as dictionaries by column code, in export order."""
    return {
        sheet.spec.code: [dict(zip((c.code for c in sheet.spec.columns), cells)) for _, cells in sheet.rows(False)]
        for sheet in result.sheets
    }


def workbook_bytes(result, language="zh") -> bytes:
    target = io.BytesIO()
    write_xlsx(tables(result, language), target, created=FROZEN_AT)
    return target.getvalue()


def test_the_participants_sheet_adds_up_to_the_ledger(session, street, season):
    rows = sheets_of(live_evaluation(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY))["participants"]
    by_id = {row["participant_id"]: row for row in rows}
    assert set(by_id) == {season.alice, season.bob, season.carol, season.party_member, season.unit}
    for participant_id, row in by_id.items():
        account = participant_account(session, participant_id)
        assert row["balance"] == account.balance
        assert row["points_earned"] - row["points_spent"] - row["points_expired"] == session.scalar(
            select(func.sum(Posting.amount)).where(Posting.account_id == account.id)
        )
    alice = by_id[season.alice]
    assert (alice["service_minutes"], alice["activities"], alice["points_spent"]) == (300, 2, 10)
    assert sum(row["points_earned"] for row in rows) == session.scalar(
        select(func.sum(Posting.amount)).join(Account, Account.id == Posting.account_id).where(Account.participant_id.is_not(None), Posting.amount > 0)
    )
    assert by_id[season.unit]["category"] == "unit" and by_id[season.party_member]["category"] == "party_member"


def test_ranks_are_counted_in_the_grid_the_community_and_the_org_among_the_same_category(session, street, season):
    rows = sheets_of(live_evaluation(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY))["participants"]
    ranks = {row["participant_id"]: (row["grid"], row["rank_grid"], row["rank_community"], row["rank_org"]) for row in rows}
    assert ranks[season.carol] == (None, None, 1, 2)  # registered at her community: no grid
    assert ranks[season.alice][1:] == (1, 1, 1)
    assert ranks[season.bob][0] == "第一微网格" and ranks[season.bob][1:] == (1, 2, 3)
    assert ranks[season.party_member][1:] == (1, 1, 1)


def test_title_eligibility_agrees_with_the_title_reports(session, street, season):
    for org_id in (street.street, street.community, street.grid):
        org = session.get(OrgNode, org_id)
        rows = sheets_of(live_evaluation(session, org=org, year=2026, today=TODAY))["participants"]
        sheet = {
            (code[len("title:") :], row["participant_id"]): (value, row[f"{code}:reason"])
            for row in rows
            for code, value in row.items()
            if code.startswith("title:") and not code.endswith(":reason") and value is not None
        }
        reports = {
            (report.title_code, candidate.participant_id): (
                candidate.eligibility.eligible,
                [[c.criterion, c.required, c.achieved, c.met] for c in candidate.eligibility.criteria],
            )
            for report in title_reports(session, org=org, year=2026, today=TODAY)
            for candidate in report.candidates
        }
        assert sheet == reports


def test_the_party_member_and_unit_sheets_say_what_their_year_was(session, street, season):
    sheets = sheets_of(live_evaluation(session, org=session.get(OrgNode, street.community), year=2026, today=TODAY))
    [member] = sheets["party_members"]
    assert (member["employer"], member["community"], member["home_activities"], member["home_minutes"]) == ("示范区税务局", "幸福社区", 4, 720)
    assert member["requirement_met"] is True and member["orders_claimed"] == 0
    [unit] = sheets["units"]
    assert (unit["points:unit_report_in"], unit["points_total"], unit["reported_on"]) == (50, 50, "2024-01-01")


def test_a_year_not_yet_begun_or_out_of_range_is_refused_naming_the_field(session, street):
    org = session.get(OrgNode, street.street)
    for year in (2027, 1999, "2026"):
        with pytest.raises(InvalidInput) as refused:
            live_evaluation(session, org=org, year=year, today=TODAY)
        assert refused.value.field == "year"


def freeze(session, write, street, actor_id, org_id=None):
    return write(
        lambda: freeze_evaluation(
            session, actor=session.get(AppUser, actor_id), org=session.get(OrgNode, org_id or street.street), year=2026, now=utc_now()
        )
    )


def test_a_frozen_evaluation_is_unchanged_by_a_later_correction_and_the_changes_show_it(desk, session, write, street, actor_id, season):
    org = session.get(OrgNode, street.street)
    frozen = freeze(session, write, street, actor_id)
    assert session.scalar(select(func.count()).select_from(EvaluationFreezeRow)) == 5 + 1 + 1
    assert session.scalars(select(EvaluationFreezeRuleSet.rule_set_version_id)).all() == [desk.default_rules]
    before = workbook_bytes(evaluation(session, org=org, year=2026, today=TODAY))
    assert before == workbook_bytes(live_evaluation(session, org=org, year=2026, today=TODAY))

    correct_alices_patrol(desk, season)

    again = evaluation(session, org=org, year=2026, today=TODAY)
    assert again.freeze.id == frozen.id and workbook_bytes(again) == before
    assert workbook_bytes(live_evaluation(session, org=org, year=2026, today=TODAY)) != before
    changes = changes_since_freeze(session, org=org, year=2026, today=TODAY)
    listed = {(c.sheet, c.participant_id, c.field): (c.frozen, c.current) for c in changes.changes()}
    assert listed[("participants", season.alice, "service_minutes")] == (300, 180)
    late = list(changes.transactions())
    assert {t.participant_id for t in late} == {season.alice}
    assert sorted((t.kind, t.service_minutes) for t in late) == [("earn", 60), ("reverse", -180)]


def test_changes_list_people_who_arrived_after_the_freeze(session, write, street, actor_id, season, make_resident):
    org = session.get(OrgNode, street.street)
    freeze(session, write, street, actor_id)
    newcomer = make_resident(street.grid, "新来的")
    changes = list(changes_since_freeze(session, org=org, year=2026, today=TODAY).changes())
    assert Change("participants", newcomer.participant_id, ROW, "absent", "present") in changes


def test_an_evaluation_is_frozen_once(session, write, street, actor_id, season):
    freeze(session, write, street, actor_id)
    with pytest.raises(AlreadyFrozen) as refused:
        freeze(session, write, street, actor_id)
    assert refused.value.field == "year"
    freeze(session, write, street, actor_id, street.community)  # another org's evaluation is its own


def test_changes_of_an_evaluation_never_frozen_are_not_found(session, street, season):
    with pytest.raises(NotFound):
        changes_since_freeze(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY)


def test_the_database_refuses_to_change_or_delete_a_frozen_row(app, session, write, street, actor_id, season):
    freeze(session, write, street, actor_id)
    row = session.scalars(select(EvaluationFreezeRow)).first()
    row.cells = []
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()
    for statement in ("UPDATE evaluation_freeze_row SET seq = seq + 100", "DELETE FROM evaluation_freeze"):
        with pytest.raises(DBAPIError):
            session.connection().exec_driver_sql(statement)
        session.rollback()
    assert session.scalar(select(func.count()).select_from(EvaluationFreezeRow)) == 7


def test_the_employer_feedback_lists_its_party_members_with_the_remark_and_rates(session, write, street, actor_id, season):
    write(lambda: set_party_members_employed(session, employer_unit_id=season.employer, count=4))
    for words in ("积极", "积极参加社区活动"):
        write(lambda: write_remark(session, actor=session.get(AppUser, actor_id), participant_id=season.party_member, year=2026, remark=words, now=FROZEN_AT))
    rules, feedbacks = employer_feedback(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY)
    [rows] = [list(feedback_table(f.name, f.members, f.party_members_employed, rules, "zh").rows) for f in feedbacks]
    assert rows[0][:2] == ["赵党员", "幸福社区"] and rows[0][7:] == ["是", "积极参加社区活动"]
    assert ["报到率", "25.0%"] in rows and ["完成率", "100.0%"] in rows


def test_the_feedback_of_an_employer_with_no_one_in_the_region_is_still_a_sheet(session, write, street, season):
    other = write(lambda: register_employer_unit(session, org=session.get(OrgNode, street.district), name="空单位").id)
    _, feedbacks = employer_feedback(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY, employer_unit_id=other)
    [feedback] = list(feedbacks)
    assert feedback.name == "空单位" and list(feedback.members) == []


def test_remarks_and_headcounts_refuse_bad_values_naming_the_field(session, street, actor_id, season):
    actor = session.get(AppUser, actor_id)
    for attempt, field in [
        (lambda: write_remark(session, actor=actor, participant_id=season.alice, year=2026, remark="好", now=FROZEN_AT), "participant_id"),
        (lambda: write_remark(session, actor=actor, participant_id=season.party_member, year=2026, remark=" ", now=FROZEN_AT), "remark"),
        (lambda: write_remark(session, actor=actor, participant_id=season.party_member, year=20, remark="好", now=FROZEN_AT), "year"),
        (lambda: set_party_members_employed(session, employer_unit_id=season.employer, count=-1), "party_members_employed"),
        (lambda: set_party_members_employed(session, employer_unit_id=10**6, count=3), "employer_unit_id"),
        (lambda: employer_feedback(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY, employer_unit_id=10**6), "employer_unit_id"),
    ]:
        with pytest.raises((InvalidInput, NotFound)) as refused:
            attempt()
        assert refused.value.field == field
        session.rollback()


def test_the_workbook_reads_back_in_chinese_with_the_formula_like_name_neutralised(session, street, season):
    data = workbook_bytes(live_evaluation(session, org=session.get(OrgNode, street.street), year=2026, today=TODAY))
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert workbook.sheetnames == ["参与者", "在职党员", "共建单位"]
    names = [row[1] for row in workbook["参与者"].iter_rows(min_row=2, values_only=True)]
    assert "王丽" in names and "'=HYPERLINK(\"x\")" in names
    assert session.get(Participant, season.bob).display_name == "=HYPERLINK(\"x\")"
