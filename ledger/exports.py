"""Writers of exports: tables of rows as CSV or as an XLSX workbook, streamed.

An export is a row builder plus a writer (see the annual evaluation in
:mod:`ledger.evaluation`): the builder yields rows of plain cells, and the writers here turn
any :class:`Table` into a file without holding its rows. Cells are text, integers, exact
decimals or empty (``None``).

* CSV is UTF-8 with a byte-order mark, so that Excel reads Chinese correctly, and is yielded
  a chunk at a time.
* XLSX is written by XlsxWriter in constant-memory mode: each row goes to a temporary file as
  soon as it is written; a workbook's sheets are written one after the other.
* Text that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
  tab or a carriage return) is written with a leading apostrophe, as OWASP advises against
  CSV injection; numbers are written as numbers, so ``-5`` stays a number.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import BinaryIO, Iterable, Iterator, Sequence

import xlsxwriter

Cell = str | int | Decimal | None

#: Characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff".encode()
#: Rows gathered before a CSV chunk is yielded.
CSV_CHUNK_ROWS = 500
#: What a sheet name may not contain, and how long it may be (Excel's rules).
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_LENGTH = 31


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


#: The media type of each format, for a download.
MEDIA_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Table:
    """One sheet of an export: its name, its header row and its rows (read once, in order)."""

    name: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def neutralise(text: str) -> str:
    """Return text a spreadsheet shows as it is: never read as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return neutralise(cell)
    return str(cell)


def csv_chunks(table: Table) -> Iterator[bytes]:
    """Yield ``table`` as CSV bytes (UTF-8 with a BOM), a few hundred rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_text(header) for header in table.headers])
    yield BOM + buffer.getvalue().encode()
    pending = 0
    buffer.seek(0)
    buffer.truncate()
    for row in table.rows:
        writer.writerow([_text(cell) for cell in row])
        pending += 1
        if pending == CSV_CHUNK_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode()


def sheet_name(name: str, taken: set[str]) -> str:
    """Return ``name`` as a valid sheet name not in ``taken`` (no ``[]:*?/\\``, at most 31 characters), and take it."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", name).strip("'") or "Sheet"
    candidate, number = base[:SHEET_NAME_LENGTH], 1
    while candidate.casefold() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = base[: SHEET_NAME_LENGTH - len(suffix)] + suffix
    taken.add(candidate.casefold())
    return candidate


def write_xlsx(tables: Iterable[Table], target: BinaryIO, *, created: dt.datetime) -> None:
    """Write ``tables`` as the sheets of one workbook to ``target``, row by row in constant memory.

    ``created`` is the workbook's recorded creation time: the same tables and time give the
    same bytes.
    """
    workbook = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False})
    workbook.set_properties({"created": created.replace(tzinfo=None)})
    bold = workbook.add_format({"bold": True})
    taken: set[str] = set()
    for table in tables:
        sheet = workbook.add_worksheet(sheet_name(table.name, taken))
        for column, header in enumerate(table.headers):
            sheet.write_string(0, column, neutralise(header), bold)
        for row_number, row in enumerate(table.rows, start=1):
            for column, cell in enumerate(row):
                if isinstance(cell, str):
                    sheet.write_string(row_number, column, neutralise(cell))
                elif cell is not None:
                    sheet.write_number(row_number, column, cell)
    if not taken:
        workbook.add_worksheet()
    workbook.close()


def write(tables: Iterable[Table], format: Format, target: BinaryIO, *, created: dt.datetime) -> None:
    """Write ``tables`` to ``target``: every one as a sheet of a workbook, or the first one as CSV."""
    if Format(format) is Format.XLSX:
        write_xlsx(tables, target, created=created)
        return
    for table in itertools.islice(tables, 1):
        for chunk in csv_chunks(table):
            target.write(chunk)
