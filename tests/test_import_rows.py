"""Reading and checking rosters and sign-in sheets, before any database: pure, with hypothesis."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.identity import check_character
from ledger.import_rows import (
    MAX_UNPACKED_BYTES,
    ROSTER,
    SIGN_IN,
    CellError,
    ProblemKind,
    Table,
    read_date,
    read_table,
    read_time,
    read_whole,
    template,
)
from tests.test_domain_is_pure import FORBIDDEN, PROBE

NOW = dt.datetime(2026, 11, 23, 12, 0)
HEADER = ("志愿者编号", "姓名", "服务类型", "服务日期", "开始时间", "结束时间")


def id_number(first_seventeen: str = "32010219800101001") -> str:
    return first_seventeen + check_character(first_seventeen)


def sign_in(*rows: tuple) -> Table:
    return Table(HEADER, tuple(enumerate(rows, start=2)))


def problems_by_line(checked) -> dict[int, list[tuple[str, str | None]]]:
    found: dict[int, list] = {}
    for problem in checked.problems:
        found.setdefault(problem.line, []).append((problem.kind.value, problem.field))
    return found


def test_the_row_module_loads_without_flask_sqlalchemy_or_psycopg():
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FORBIDDEN), json.dumps(["ledger.import_rows"])],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == {"ledger.import_rows": []}


# Cells.


@given(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
def test_every_way_staff_write_a_date_reads_as_that_date(day):
    written = [
        day,
        dt.datetime.combine(day, dt.time()),
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month:02d}.{day.day:02d}",
        f"{day.year}年{day.month}月{day.day}日",
        # As a Chinese input method types it: full-width digits.
        day.isoformat().translate(str.maketrans("0123456789-", "０１２３４５６７８９－")),
    ]
    assert {read_date(cell) for cell in written} == {day}


@given(st.times().map(lambda moment: moment.replace(microsecond=0)))
def test_a_time_reads_from_text_or_a_spreadsheet_cell(moment):
    assert read_time(moment) == read_time(f"{moment:%H:%M:%S}") == moment
    assert read_time(f"{moment.hour}：{moment:%M}") == moment.replace(second=0)


@pytest.mark.parametrize("cell", ["2026-02-30", "2026-13-01", "3/4/2026", "yesterday", 45000])
def test_what_is_not_a_date_is_a_bad_date(cell):
    with pytest.raises(CellError) as refusal:
        read_date(cell)
    assert refusal.value.kind is ProblemKind.BAD_DATE


@given(st.integers(0, 1440))
def test_a_whole_number_reads_from_an_integer_a_whole_float_or_digits(value):
    read = read_whole(0, 1440)
    assert read(value) == read(float(value)) == read(str(value)) == value


@pytest.mark.parametrize("cell", [30.5, "30.0", "-5", "十", True, 1441])
def test_fractions_signs_words_and_out_of_range_numbers_are_refused(cell):
    with pytest.raises(CellError):
        read_whole(0, 1440)(cell)


def test_an_id_number_a_spreadsheet_stored_as_a_number_is_refused_with_the_remedy():
    checked = ROSTER.check(
        Table(("姓名", "身份证号", "志愿者编号", "注册日期"), ((2, ("李明", 3.20102198001011e17, "R1", "2026-03-01")),)),
        now=NOW,
    )
    [problem] = checked.problems
    assert problem.field == "id_number" and "format the column as text" in problem.message


# Rows.


@given(st.lists(st.tuples(*[st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats())] * 6), max_size=8))
def test_any_cells_give_each_row_either_values_or_problems_never_an_error(rows):
    checked = SIGN_IN.check(sign_in(*rows), now=NOW)

    good = {row.line for row in checked.rows}
    bad = {problem.line for problem in checked.problems}
    assert checked.total == len(rows) and not good & bad
    assert good | bad == set(range(2, len(rows) + 2))


def test_a_row_lists_every_problem_it_has_not_only_the_first():
    checked = SIGN_IN.check(sign_in(("", "李明", "巡逻", "2026-02-30", "9点", "11:00")), now=NOW)

    assert problems_by_line(checked) == {
        2: [("bad_value", "volunteer_number"), ("bad_date", "date"), ("bad_date", "start_time")]
    }


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("11:00", "09:00", "结束时间 must be after 开始时间 (for service past midnight, fill in 结束日期)"),
        ("09:00", "09:00", "结束时间 must be after 开始时间 (for service past midnight, fill in 结束日期)"),
    ],
)
def test_service_that_ends_before_it_starts_is_a_bad_date(start, end, message):
    checked = SIGN_IN.check(sign_in(("V1", "李明", "巡逻", "2026-03-04", start, end)), now=NOW)

    [problem] = checked.problems
    assert (problem.kind, problem.field, problem.message) == (ProblemKind.BAD_DATE, "end_time", message)


def test_service_that_has_not_ended_yet_is_refused():
    checked = SIGN_IN.check(sign_in(("V1", "李明", "巡逻", "2026-11-23", "11:00", "13:00")), now=NOW)

    assert problems_by_line(checked) == {2: [("bad_date", "end_time")]}


intervals = st.tuples(st.integers(0, 48), st.integers(1, 12)).map(
    lambda pair: (dt.datetime(2026, 3, 1) + dt.timedelta(minutes=30 * pair[0]), dt.timedelta(minutes=30 * pair[1]))
)


@given(st.lists(intervals, max_size=8))
def test_the_rows_left_never_overlap_and_each_refused_one_overlaps_or_repeats_another(spans):
    rows = [("V1", "李明", "巡逻", start.date(), start.time(), (start + length).time()) for start, length in spans]
    rows = [row for row, (start, length) in zip(rows, spans) if (start + length).date() == start.date()]

    checked = SIGN_IN.check(sign_in(*rows), now=NOW)

    kept = sorted((row.started, row.ended) for row in checked.rows)
    assert all(earlier[1] <= later[0] for earlier, later in zip(kept, kept[1:]))
    every = {line: (row[3], row[4], row[5]) for line, row in enumerate(rows, start=2)}
    for problem in checked.problems:
        assert problem.kind in (ProblemKind.OVERLAPPING_TIME, ProblemKind.DUPLICATE_ROW)
        day, start, end = every[problem.line]
        assert any(
            line != problem.line and other[0] == day and other[1] < end and start < other[2]
            for line, other in every.items()
        )


def test_different_people_at_the_same_time_do_not_overlap():
    checked = SIGN_IN.check(
        sign_in(("V1", "李明", "巡逻", "2026-03-04", "09:00", "11:00"), ("V2", "王芳", "巡逻", "2026-03-04", "09:00", "11:00")),
        now=NOW,
    )
    assert (len(checked.rows), checked.problems) == (2, ())


def test_a_roster_refuses_a_number_or_an_id_number_given_twice():
    header = ("姓名", "身份证号", "志愿者编号", "注册日期")
    checked = ROSTER.check(
        Table(
            header,
            (
                (2, ("李明", id_number(), "R1", "2026-03-01")),
                (3, ("王芳", id_number("11010119900307123"), "R1", "2026-03-01")),
                (4, ("李明", id_number(), "R3", "2026-03-01")),
            ),
        ),
        now=NOW,
    )
    assert problems_by_line(checked) == {3: [("duplicate_row", "volunteer_number")], 4: [("duplicate_row", "id_number")]}


# Files.


def test_a_csv_saved_by_chinese_excel_in_gb18030_reads_like_utf8():
    text = "志愿者编号,姓名\r\nV1,李明\r\n"
    assert read_table(text.encode("gb18030")) == read_table(text.encode("utf-8-sig")) == Table(
        ("志愿者编号", "姓名"), ((2, ("V1", "李明")),)
    )


def test_blank_rows_are_skipped_but_keep_their_line_numbers():
    table = read_table("a,b\n\n1,2\n,\n3,4".encode())
    assert table.rows == ((3, ("1", "2")), (5, ("3", "4")))


def test_a_header_may_name_columns_by_field_and_in_any_order():
    checked = SIGN_IN.check(
        Table(("END_TIME", "start_time", "date", "activity_type", "real_name", "volunteer_number"),
              ((2, ("11:00", "09:00", "2026-03-04", "patrol", "李明", "V1")),)),
        now=NOW,
    )
    assert [row.started for row in checked.rows] == [dt.datetime(2026, 3, 4, 9)]


def zipped(name: str, data: bytes) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return packed.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\xff\xfe\x00\x01", "neither an XLSX workbook nor CSV text"),
        (b"PK\x03\x04 not really a zip", "cannot be read as an XLSX workbook"),
        ("a\n" + "1\n" * 11, "more than 10 rows"),
        ('a\n"' + "x" * 200_000 + '"', "cannot be read as CSV"),
        (zipped("hello.txt", b"not a workbook"), "cannot be read as an XLSX workbook"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_as_a_whole(content, message):
    with pytest.raises(InvalidInput) as refusal:
        read_table(content.encode() if isinstance(content, str) else content, max_rows=10)
    assert refusal.value.field == "file" and message in refusal.value.message


def test_a_workbook_that_would_unpack_to_too_much_is_refused_before_it_is_opened():
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        read_table(zipped("xl/sharedStrings.xml", b" " * (MAX_UNPACKED_BYTES + 1)))


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_a_template_reads_back_as_an_empty_sheet_with_every_column(format):
    table = read_table(template(SIGN_IN, format))

    assert table == Table(tuple(column.header for column in SIGN_IN.columns), ())


def test_a_template_in_an_unknown_format_is_refused():
    with pytest.raises(InvalidInput) as refusal:
        template(ROSTER, "ods")
    assert refusal.value.field == "format"
