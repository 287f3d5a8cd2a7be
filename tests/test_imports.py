"""Bulk import of rosters and sign-in sheets, on SQLite and PostgreSQL: the report, the write, idempotency.

The street fixture's first community 幸福社区 (C1) imports. Its volunteers 李明 (V00001) and
王芳 (V00002) live in its first grid; 赵强 (V00003) lives in 和平社区 (C2). The default rules
are in force: two hours of patrol on Wednesday 2026-03-04 earn 20 points.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from ledger.db import write_transaction
from ledger.errors import InvalidInput
from ledger.import_rows import ROSTER, SIGN_IN, ProblemKind, Sheet
from ledger.imports import ImportReport, check_file, import_rows, rehearse
from ledger.models import Activity, AppUser, OrgNode, Person, Transaction, Volunteer
from ledger.verify import verify_ledger
from tests.activity_fixtures import service
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.refusals import row_counts

SIGN_IN_HEADER = "志愿者编号,姓名,服务类型,服务日期,开始时间,结束时间,组织编码"
ROSTER_HEADER = "姓名,身份证号,志愿者编号,注册日期,组织编码"


def csv_file(header: str, *rows: str) -> bytes:
    return "\n".join((header, *rows)).encode("utf-8")


@pytest.fixture
def people(street, make_resident, default_rules):
    """李明 V00001 and 王芳 V00002 in C1's first grid, 赵强 V00003 in C2."""
    return (
        make_resident(name="李明"),
        make_resident(name="王芳"),
        make_resident(street.other_community, name="赵强"),
    )


@pytest.fixture
def importer(session, street, actor_id):
    """Return a callable that checks (or, with ``write=True``, imports) a file into an org; it returns the report."""

    def run(content: bytes, sheet: Sheet = SIGN_IN, *, write: bool = False, org_id: int | None = None) -> ImportReport:
        org = session.get(OrgNode, org_id or street.community)
        checked = check_file(sheet, content, org)

        def work():
            return import_rows(
                session,
                actor=session.get(AppUser, actor_id),
                org=session.get(OrgNode, org_id or street.community),
                checked=checked,
                sheet=sheet,
                id_number_key=ID_NUMBER_KEY,
            )

        return (write_transaction if write else rehearse)(work)

    return run


def kinds(report: ImportReport) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for problem in report.problems:
        found.setdefault(problem.line, set()).add(problem.kind.value)
    return found


def imported_activities(session) -> int:
    return session.scalar(select(func.count()).select_from(Activity))


GOOD_ROWS = (
    "V00001,李明,巡逻,2026-03-04,09:00,11:00,",
    "V00002,王芳,patrol,2026-03-04,09:00,11:00,C1-G1",
)


def test_a_sheet_with_every_kind_of_bad_row_is_reported_line_by_line_and_nothing_is_written(
    session, desk, people, importer
):
    earlier = desk.record(service(people[0].participant_id, "2026-03-05 09:00", "11:00"))
    sheet = csv_file(
        SIGN_IN_HEADER,
        *GOOD_ROWS,
        "V09999,无名,巡逻,2026-03-04,09:00,11:00,",  # 4: nobody has this number
        "V00002,王芳,巡逻,2026-03-04,10:00,12:00,",  # 5: overlaps line 3
        "V00001,李明,巡逻,2026-02-30,09:00,11:00,",  # 6: no such day
        "V00001,李明,巡逻,2026-03-04,09:00,11:00,",  # 7: line 2 again
        "V00003,赵强,巡逻,2026-03-04,09:00,11:00,",  # 8: registered in another community
        "V00001,李明,巡逻,2026-03-06,09:00,11:00,C2",  # 9: an org outside the importer's
        "V00001,李明,巡逻,2026-03-05,10:00,12:00,",  # 10: overlaps what the ledger already holds
        "V00002,李明,巡逻,2026-03-07,09:00,11:00,",  # 11: the number is 王芳's
        "V00002,王芳,跳舞,2026-03-08,09:00,11:00,",  # 12: the rules know no such type
    )
    before = row_counts(session)

    report = importer(sheet)

    assert kinds(report) == {
        4: {"unknown_person"},
        5: {"overlapping_time"},
        6: {"bad_date"},
        7: {"duplicate_row"},
        8: {"unknown_person"},
        9: {"out_of_scope"},
        10: {"overlapping_time"},
        11: {"unknown_person"},
        12: {"bad_value"},
    }
    assert (report.rows, report.imported, report.already_imported, report.bad_rows) == (11, 2, 0, 9)
    messages = {problem.line: problem for problem in report.problems}
    assert messages[5].message == "overlaps line 3 (2026-03-04 09:00–11:00) of the same person"
    assert messages[6].field == "date"
    assert messages[7].message == "repeats line 2"
    assert f"activity {earlier.activity.id}" in messages[10].message
    assert "registered as 王芳, not 李明" in messages[11].message
    assert "赵强" not in messages[8].message and "和平社区" not in messages[8].message
    assert row_counts(session) == before


def test_importing_the_good_rows_writes_them_through_the_ledger_and_leaves_the_bad_ones_out(
    session, people, importer
):
    report = importer(csv_file(SIGN_IN_HEADER, *GOOD_ROWS, "V09999,无名,巡逻,2026-03-04,09:00,11:00,"), write=True)

    assert (report.imported, report.bad_rows) == (2, 1)
    activities = session.scalars(select(Activity).order_by(Activity.participant_id)).all()
    assert [(a.participant_id, a.activity_type, a.org.code) for a in activities] == [
        (people[0].participant_id, "patrol", "C1"),
        (people[1].participant_id, "patrol", "C1-G1"),
    ]
    earned = session.scalars(select(Transaction).where(Transaction.kind == "earn")).all()
    assert sorted((t.service_minutes, sum(p.amount for p in t.postings if p.amount > 0)) for t in earned) == [
        (120, 20),
        (120, 20),
    ]
    assert verify_ledger(session).ok


def test_importing_the_same_file_twice_writes_nothing_the_second_time(session, people, importer):
    sheet = csv_file(SIGN_IN_HEADER, *GOOD_ROWS)
    importer(sheet, write=True)
    before = row_counts(session)

    again = importer(sheet, write=True)

    assert (again.imported, again.already_imported, again.problems) == (0, 2, ())
    assert row_counts(session) == before


def test_a_corrected_copy_of_a_file_writes_only_its_new_rows(session, people, importer):
    importer(csv_file(SIGN_IN_HEADER, GOOD_ROWS[0], "V00002,王芳,巡逻,2026-02-30,09:00,11:00,"), write=True)

    corrected = importer(csv_file(SIGN_IN_HEADER, GOOD_ROWS[0], "V00002,王芳,巡逻,2026-03-03,09:00,11:00,"), write=True)

    assert (corrected.imported, corrected.already_imported, corrected.problems) == (1, 1, ())
    assert imported_activities(session) == 2


def test_a_person_in_the_importers_street_who_belongs_to_another_community_is_out_of_scope(
    session, street, people, importer
):
    report = importer(csv_file(SIGN_IN_HEADER, "V00003,赵强,巡逻,2026-03-04,09:00,11:00,C1"), org_id=street.street)

    assert kinds(report) == {2: {"out_of_scope"}}
    assert report.problems[0].field == "volunteer_number"


def test_service_past_midnight_names_its_end_date_and_optional_columns_are_read(session, people, importer):
    header = "志愿者编号,姓名,服务类型,服务日期,开始时间,结束时间,结束日期,路程分钟,标签,服务内容"
    report = importer(
        csv_file(header, "V00001,李明,巡逻,2026-07-10,22:00,02:00,2026-07-11,20,emergency、night,防汛值守"), write=True
    )

    assert (report.imported, report.problems) == (1, ())
    activity = session.scalars(select(Activity)).one()
    assert (activity.ended_at - activity.started_at, activity.travel_minutes) == (dt.timedelta(hours=4), 20)
    assert (activity.tags, activity.description) == (["emergency", "night"], "防汛值守")


def test_an_xlsx_sheet_is_read_like_a_csv_one(session, people, importer):
    workbook = Workbook()
    workbook.active.append(SIGN_IN_HEADER.split(","))
    workbook.active.append(["V00001", "李明", "巡逻", dt.datetime(2026, 3, 4), dt.time(9), dt.time(11), None])
    workbook.active.append([2, "王芳", "巡逻", "2026-03-04", "09:00", "11:00", None])
    content = io.BytesIO()
    workbook.save(content)

    report = importer(content.getvalue(), write=True)

    assert (report.imported, kinds(report)) == (1, {3: {"unknown_person"}})


def test_a_file_whose_columns_are_wrong_is_refused_naming_them(people, importer):
    with pytest.raises(InvalidInput) as refusal:
        importer(csv_file("志愿者编号,姓名,开始时刻", "V00001,李明,09:00"))

    assert refusal.value.field == "file"
    assert "unknown column '开始时刻'" in refusal.value.message and "missing column(s) 服务类型" in refusal.value.message


# The roster.


def roster_row(name: str, id_number: str, number: str, day: str = "2026-03-01", org: str = "") -> str:
    return f"{name},{id_number},{number},{day},{org}"


def test_a_roster_registers_its_volunteers_and_a_second_import_writes_nothing(session, street, importer):
    roster = csv_file(
        ROSTER_HEADER,
        roster_row("陈静", valid_id_number(), "R001", org="C1-G1"),
        roster_row("刘洋", valid_id_number(dt.date(2010, 5, 1)), "R002"),
    )

    first = importer(roster, ROSTER, write=True)
    before = row_counts(session)
    second = importer(roster, ROSTER, write=True)

    assert (first.imported, second.imported, second.already_imported) == (2, 0, 2)
    assert row_counts(session) == before
    registered = session.execute(select(Person.real_name, Volunteer.volunteer_number).join(Volunteer)).all()
    assert sorted(registered) == [("刘洋", "R002"), ("陈静", "R001")]


def test_a_roster_reports_each_bad_row(session, street, people, importer):
    id_number = valid_id_number()
    roster = csv_file(
        ROSTER_HEADER,
        roster_row("陈静", id_number, "R001"),
        roster_row("陈静", id_number, "R002"),  # 3: the same ID number as line 2
        roster_row("刘洋", "110101199003071234", "R003"),  # 4: the check character is wrong
        roster_row("周杰", valid_id_number(), "R004", day="2026-3-32"),  # 5
        roster_row("孙丽", valid_id_number(), "V00001"),  # 6: 李明's number
        roster_row("吴刚", valid_id_number(), "R006", org="C2"),  # 7
        roster_row("郑爽", valid_id_number(), "R 007"),  # 8: a space is not allowed in a number
    )

    report = importer(roster, ROSTER)

    assert kinds(report) == {
        3: {"duplicate_row"},
        4: {"bad_value"},
        5: {"bad_date"},
        6: {"already_registered"},
        7: {"out_of_scope"},
        8: {"bad_value"},
    }
    assert report.imported == 1


# The command line.


def test_the_command_checks_a_sheet_prints_each_bad_row_and_writes_nothing(session, runner, tmp_path, people):
    path = tmp_path / "签到表.csv"
    path.write_bytes(csv_file(SIGN_IN_HEADER, *GOOD_ROWS, "V00001,李明,巡逻,2026-02-30,09:00,11:00,"))

    result = runner.invoke(args=["import", "activities", str(path), "--org", "C1"])

    assert result.exit_code == 1
    assert "line     4 · 日期或时间有误 bad date · 服务日期 (date): must be a date such as 2026-03-07" in result.output
    assert "2 of 3 rows can be imported, 1 rows have problems." in result.output
    assert "Nothing was written" in result.output
    assert imported_activities(session) == 0


def test_the_command_imports_the_good_rows_when_told_to(session, runner, tmp_path, people):
    path = tmp_path / "sheet.csv"
    path.write_bytes(csv_file(SIGN_IN_HEADER, *GOOD_ROWS))

    result = runner.invoke(args=["import", "activities", str(path), "--org", "C1", "--import-good-rows"])
    again = runner.invoke(args=["import", "activities", str(path), "--org", "C1", "--import-good-rows"])

    assert result.exit_code == 0, result.output
    assert "Importing 2 rows against the ledger" in result.output and "Imported 2 of 2 rows." in result.output
    assert "Imported 0 of 2 rows, 2 were imported before." in again.output
    assert imported_activities(session) == 2


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_the_template_command_writes_a_file_the_import_reads(runner, tmp_path, people, suffix):
    path = tmp_path / f"模板.{suffix}"

    written = runner.invoke(args=["import", "template", "volunteers", str(path)])
    checked = runner.invoke(args=["import", "volunteers", str(path), "--org", "C1"])

    assert written.exit_code == 0 and checked.exit_code == 0, checked.output
    assert "0 of 0 rows can be imported" in checked.output
