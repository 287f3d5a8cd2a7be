"""The export writers: CSV with a BOM and XLSX in constant memory, Chinese intact, formulas neutralised."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.exports import BOM, CSV_CHUNK_ROWS, Table, csv_chunks, neutralise, sheet_name, write_xlsx

CREATED = dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.timezone.utc)
HEADERS = ["姓名", "积分", "时长"]
ROWS = [["张三", 120, Decimal("12.50")], ["=HYPERLINK(\"http://x\")", -5, None], ["@SUM(A1)", 0, Decimal("0.33")]]

# Control characters are escaped in XLSX (_x001F_), which Excel undoes and openpyxl does not.
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
cells = st.one_of(st.none(), st.integers(-(10**12), 10**12), text)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline="")))


def read_xlsx(data: bytes) -> dict[str, list[list]]:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets}


def xlsx(tables) -> bytes:
    target = io.BytesIO()
    write_xlsx(tables, target, created=CREATED)
    return target.getvalue()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-x", "'-x"), ("@me", "'@me"), ("\tx", "'\tx"), ("王=1", "王=1"), ("", "")],
)
def test_text_a_spreadsheet_would_read_as_a_formula_is_neutralised(raw, shown):
    assert neutralise(raw) == shown


def test_csv_starts_with_a_bom_and_reads_back_with_chinese_intact_and_formulas_neutralised():
    data = b"".join(csv_chunks(Table("参与者", HEADERS, iter(ROWS))))
    assert read_csv(data) == [
        HEADERS,
        ["张三", "120", "12.50"],
        ["'=HYPERLINK(\"http://x\")", "-5", ""],
        ["'@SUM(A1)", "0", "0.33"],
    ]


def test_csv_is_yielded_in_chunks_rather_than_all_at_once():
    rows = ([f"志愿者{n}", n] for n in range(CSV_CHUNK_ROWS * 2 + 1))
    chunks = list(csv_chunks(Table("t", ["a", "b"], rows)))
    assert len(chunks) == 4  # the header, two full chunks, the last row
    assert len(read_csv(b"".join(chunks))) == CSV_CHUNK_ROWS * 2 + 2


def test_xlsx_reads_back_with_chinese_intact_numbers_as_numbers_and_formulas_as_text():
    sheets = read_xlsx(xlsx([Table("参与者", HEADERS, iter(ROWS)), Table("共建单位", ["名称"], iter([["物业公司"]]))]))
    assert sheets == {
        "参与者": [HEADERS, ["张三", 120, 12.5], ["'=HYPERLINK(\"http://x\")", -5, None], ["'@SUM(A1)", 0, 0.33]],
        "共建单位": [["名称"], ["物业公司"]],
    }


def test_the_same_tables_and_creation_time_give_the_same_workbook_bytes():
    assert xlsx([Table("参与者", HEADERS, iter(ROWS))]) == xlsx([Table("参与者", HEADERS, iter(ROWS))])


def test_a_workbook_with_no_tables_still_opens():
    assert list(read_xlsx(xlsx([]))) == ["Sheet1"]


def test_sheet_names_are_made_valid_and_distinct():
    taken: set[str] = set()
    names = [sheet_name(name, taken) for name in ["示范区[第一]中学:*?/\\", "A" * 40, "A" * 40, "a" * 31, "'"]]
    assert names == ["示范区_第一_中学_____", "A" * 31, "A" * 27 + " (2)", "a" * 27 + " (3)", "Sheet"]


def shown(cell):
    """Return what a spreadsheet keeps of a cell: formula text prefixed, everything else as it was."""
    return neutralise(cell) if isinstance(cell, str) else cell


@given(rows=st.lists(st.lists(cells, min_size=2, max_size=2), max_size=20))
def test_any_row_survives_csv_and_xlsx_with_only_formula_text_prefixed(rows):
    back = read_csv(b"".join(csv_chunks(Table("t", ["甲", "乙"], iter(rows)))))
    assert back[1:] == [["" if cell is None else str(shown(cell)) for cell in row] for row in rows]
    sheet = read_xlsx(xlsx([Table("t", ["甲", "乙"], iter(rows))]))["t"]
    blank_tail = [[None, None]] * (len(rows) + 1 - len(sheet))  # a sheet ends at its last row with a cell
    assert sheet[1:] + blank_tail == [[shown(cell) for cell in row] for row in rows]
