"""Rosters and sign-in sheets as staff keep them: reading CSV and XLSX files, checking their rows.

Pure: no Flask, no database. :func:`read_table` reads a file into a :class:`Table` (the header
and each row with the line a spreadsheet shows it on). A :class:`Sheet` maps the header to its
columns and checks every row, collecting every problem a row has rather than stopping at the
first, and then checks the rows against each other: a row that repeats another, a person
signed in twice at overlapping times. What needs the ledger (is the person registered, is the
service within the importer's org, do the rules take it) is checked by :mod:`ledger.imports`.

Two sheets are known, each with its columns (the header may use the Chinese name or the field
name; columns may come in any order; optional ones may be left out):

* ``volunteers`` (志愿者名册): 姓名, 身份证号, 志愿者编号, 注册日期, and optionally 组织编码.
* ``activities`` (服务签到表): 志愿者编号, 姓名, 服务类型, 服务日期, 开始时间, 结束时间, and
  optionally 结束日期 (for service past midnight), 组织编码, 路程分钟, 数量, 标签, 服务内容.

Dates are ``2026-03-07``, ``2026/3/7``, ``2026.3.7`` or ``2026年3月7日`` (or a spreadsheet
date); times ``09:00``; both in the org's own time zone. Full-width digits and punctuation, as
Chinese input methods type them, are read as their ASCII forms.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Iterator

from ledger import identity
from ledger.errors import InvalidInput

#: Rows one file may hold; a bigger roster is imported in several files.
MAX_ROWS = 10_000
#: Columns read from a spreadsheet row; anything further right is ignored.
MAX_COLUMNS = 40
#: What the parts of an XLSX file may unpack to, against compressed "zip bombs".
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_TEXT_LENGTH = 500
DAY = dt.timedelta(days=1)

XLSX_MAGIC = b"PK\x03\x04"
CSV_ENCODINGS = ("utf-8-sig", "gb18030")


class ProblemKind(StrEnum):
    """Why a row is refused."""

    BAD_VALUE = "bad_value"
    BAD_DATE = "bad_date"
    UNKNOWN_PERSON = "unknown_person"
    OVERLAPPING_TIME = "overlapping_time"
    DUPLICATE_ROW = "duplicate_row"
    OUT_OF_SCOPE = "out_of_scope"
    #: The volunteer number or ID number is already registered to someone else.
    ALREADY_REGISTERED = "already_registered"
    #: The ledger refused it for another reason, such as an activity type the rules do not know.
    REFUSED = "refused"


#: What each kind of problem is called, in Chinese and English.
PROBLEM_LABELS = {
    ProblemKind.BAD_VALUE: ("内容有误", "bad value"),
    ProblemKind.BAD_DATE: ("日期或时间有误", "bad date"),
    ProblemKind.UNKNOWN_PERSON: ("查无此人", "unknown person"),
    ProblemKind.OVERLAPPING_TIME: ("时间重叠", "overlapping time"),
    ProblemKind.DUPLICATE_ROW: ("重复行", "duplicate row"),
    ProblemKind.OUT_OF_SCOPE: ("不在本组织范围", "out of scope"),
    ProblemKind.ALREADY_REGISTERED: ("已被他人登记", "already registered"),
    ProblemKind.REFUSED: ("台账拒收", "refused"),
}


@dataclass(frozen=True)
class Problem:
    """One reason a row cannot be imported."""

    #: The row's line, as a spreadsheet numbers it (the header is line 1).
    line: int
    kind: ProblemKind
    #: The column at fault (its field name), or ``None`` for the row as a whole.
    field: str | None
    message: str


class CellError(ValueError):
    """Raised by a column's reader: the cell's text cannot be what the column holds."""

    def __init__(self, message: str, kind: ProblemKind = ProblemKind.BAD_VALUE):
        super().__init__(message)
        self.message = message
        self.kind = kind


# --- Reading files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A file's header and its non-empty rows, each with its line number."""

    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[Any, ...]], ...]


def read_table(content: bytes, *, max_rows: int = MAX_ROWS) -> Table:
    """Read an XLSX workbook's first sheet, or CSV text (UTF-8 or GB18030, as Excel saves it)."""
    lines = _xlsx_lines(content) if content.startswith(XLSX_MAGIC) else _csv_lines(content)
    header: tuple[str, ...] | None = None
    rows = []
    for line, cells in lines:
        if all(_is_blank(cell) for cell in cells):
            continue
        if header is None:
            header = tuple(_text(cell) for cell in cells)
            while not header[-1]:  # spreadsheets pad rows with empty cells on the right
                header = header[:-1]
            width = len(header)
            continue
        if len(rows) == max_rows:
            raise InvalidInput(f"has more than {max_rows} rows; split it into several files", field="file")
        rows.append((line, tuple(cells[:width]) + (None,) * (width - len(cells))))
    if header is None:
        raise InvalidInput("is empty: the first row names the columns, the rows below hold the data", field="file")
    return Table(header, tuple(rows))


def _csv_lines(content: bytes) -> Iterator[tuple[int, list[str]]]:
    text = _decode(content)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        yield from enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1)
    except csv.Error as error:
        raise InvalidInput(f"cannot be read as CSV ({error})", field="file") from None


def _decode(content: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return codecs.decode(content, encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("is neither an XLSX workbook nor CSV text in UTF-8 or GB18030", field="file")


def _xlsx_lines(content: bytes) -> Iterator[tuple[int, tuple[Any, ...]]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(part.file_size for part in archive.infolist())
    except zipfile.BadZipFile as error:
        raise InvalidInput(f"cannot be read as an XLSX workbook ({error})", field="file") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise InvalidInput(f"unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB", field="file")
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
            yield from enumerate(sheet.iter_rows(min_row=1, max_col=MAX_COLUMNS, values_only=True), start=1)
        finally:
            workbook.close()
    except Exception as error:  # noqa: BLE001 - whatever a malformed workbook makes its reader raise
        raise InvalidInput(f"cannot be read as an XLSX workbook ({type(error).__name__}: {error})", field="file") from None


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Any) -> str:
    """Return a cell's text with full-width characters folded (NFKC) and the edges stripped."""
    return unicodedata.normalize("NFKC", str(cell)).strip() if cell is not None else ""


# --- Reading cells -----------------------------------------------------------------------------


def read_text(maximum: int) -> Callable[[Any], str]:
    def read(cell: Any) -> str:
        text = _text(cell)
        if len(text) > maximum:
            raise CellError(f"must be at most {maximum} characters")
        if any(unicodedata.category(character) == "Cc" for character in text):
            raise CellError("must not contain control characters")
        return text

    return read


def read_code(maximum: int) -> Callable[[Any], str]:
    """A code such as a volunteer number, which a spreadsheet may have stored as a number."""
    text = read_text(maximum)

    def read(cell: Any) -> str:
        if isinstance(cell, float) and cell.is_integer():
            cell = int(cell)
        return text(cell)

    return read


def read_id_number(cell: Any) -> str:
    if isinstance(cell, (int, float)):
        raise CellError("was stored as a number and lost its last digits: format the column as text (文本) and type it again")
    try:
        return identity.normalise_id_number(_text(cell))
    except InvalidInput as refusal:
        raise CellError(refusal.message) from None


_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def read_date(cell: Any) -> dt.date:
    if isinstance(cell, dt.datetime):
        if cell.time() != dt.time():
            raise CellError("must be a date without a time", ProblemKind.BAD_DATE)
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    match = _DATE.fullmatch(_text(cell))
    try:
        if match is None:
            raise ValueError
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        raise CellError(f"must be a date such as 2026-03-07, not {_text(cell)!r}", ProblemKind.BAD_DATE) from None


def read_time(cell: Any) -> dt.time:
    if isinstance(cell, dt.time):
        return cell.replace(microsecond=0)
    match = _TIME.fullmatch(_text(cell))
    try:
        if match is None:
            raise ValueError
        hour, minute, second = (int(part or 0) for part in match.groups())
        return dt.time(hour, minute, second)
    except ValueError:
        raise CellError(f"must be a time such as 09:30, not {_text(cell)!r}", ProblemKind.BAD_DATE) from None


def read_whole(minimum: int, maximum: int) -> Callable[[Any], int]:
    """A whole number; a spreadsheet's ``30.0`` is 30, but ``30.5`` is refused."""

    def read(cell: Any) -> int:
        if isinstance(cell, bool):
            raise CellError("must be a whole number")
        if isinstance(cell, float):
            if not cell.is_integer():
                raise CellError("must be a whole number")
            cell = int(cell)
        if isinstance(cell, int):
            value = cell
        elif _text(cell).isascii() and _text(cell).isdigit():
            value = int(_text(cell))
        else:
            raise CellError(f"must be a whole number, not {_text(cell)!r}")
        if not minimum <= value <= maximum:
            raise CellError(f"must be from {minimum} to {maximum}")
        return value

    return read


_TAG_SEPARATORS = re.compile(r"[,;、\s]+")


def read_tags(cell: Any) -> tuple[str, ...]:
    tags = tuple(sorted({tag for tag in _TAG_SEPARATORS.split(_text(cell)) if tag}))
    if len(tags) > 10 or any(len(tag) > 40 for tag in tags):
        raise CellError("at most 10 tags of at most 40 characters, separated by commas or 、")
    return tags


# --- Sheets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    #: The field name, which the header may also use.
    field: str
    #: The column's name in the template.
    header: str
    read: Callable[[Any], Any]
    required: bool = True
    default: Any = None
    #: What the column holds, for the template and the README.
    help: str = ""


@dataclass(frozen=True)
class RosterRow:
    """A volunteer to register."""

    line: int
    real_name: str
    id_number: str
    volunteer_number: str
    registered_on: dt.date
    org_code: str | None


@dataclass(frozen=True)
class SignInRow:
    """A volunteer's service on a sign-in sheet; times are wall-clock times of the org."""

    line: int
    volunteer_number: str
    real_name: str
    activity_type: str
    started: dt.datetime
    ended: dt.datetime
    org_code: str | None
    travel_minutes: int
    quantity: int | None
    tags: tuple[str, ...]
    description: str | None

    def content(self) -> tuple:
        """Return what the row says, without where it stands in the file."""
        return tuple(getattr(self, name) for name in self.__dataclass_fields__ if name != "line")


@dataclass(frozen=True)
class Checked:
    """A file's rows after checking: those that may go on to the ledger, and every problem found."""

    rows: tuple[Any, ...]
    problems: tuple[Problem, ...]
    #: Rows read, good and bad.
    total: int


@dataclass(frozen=True)
class Sheet:
    """One kind of file: its columns, how a row's values become a row, and how rows are checked together."""

    name: str
    title: str
    columns: tuple[Column, ...]
    #: Builds the row from its cells' values (by field name), or lists what is wrong across them.
    build: Callable[[int, dict[str, Any], dt.datetime], tuple[Any, list[Problem]]]
    #: Finds problems between rows: repeats, overlaps.
    across: Callable[[list[Any]], list[Problem]]

    def column_map(self, header: tuple[str, ...]) -> list[Column | None]:
        """Return each header cell's column (``None`` for an empty one); refuse unknown, repeated and missing columns."""
        by_name = {name.casefold(): column for column in self.columns for name in (column.header, column.field)}
        found: list[Column | None] = []
        errors = []
        for name in header:
            column = by_name.get(name.casefold()) if name else None
            if name and column is None:
                errors.append(f"unknown column {name!r}")
            elif column is not None and column in found:
                errors.append(f"column {name!r} appears twice")
            found.append(column)
        missing = [column.header for column in self.columns if column.required and column not in found]
        if missing:
            errors.append(f"missing column(s) {', '.join(missing)}")
        if errors:
            known = ", ".join(f"{column.header} ({column.field})" for column in self.columns)
            raise InvalidInput("; ".join(errors) + f". The columns of a {self.title} are: {known}", field="file")
        return found

    def check(self, table: Table, *, now: dt.datetime) -> Checked:
        """Check every row of ``table`` (``now`` is the org's wall-clock time: service cannot end after it)."""
        columns = self.column_map(table.header)
        problems: list[Problem] = []
        rows = []
        for line, cells in table.rows:
            values, row_problems = _read_cells(line, columns, cells)
            for column in self.columns:
                if not column.required:
                    values.setdefault(column.field, column.default)
            row, built_problems = self.build(line, values, now) if not row_problems else (None, [])
            problems.extend(row_problems + built_problems)
            if row is not None and not built_problems:
                rows.append(row)
        across = self.across(rows)
        bad_lines = {problem.line for problem in across}
        problems.extend(across)
        return Checked(
            rows=tuple(row for row in rows if row.line not in bad_lines),
            problems=tuple(sorted(problems, key=lambda problem: problem.line)),
            total=len(table.rows),
        )


def _read_cells(line: int, columns: list[Column | None], cells: tuple[Any, ...]) -> tuple[dict[str, Any], list[Problem]]:
    values: dict[str, Any] = {}
    problems = []
    for column, cell in zip(columns, cells):
        if column is None:
            continue
        if _is_blank(cell):
            if column.required:
                problems.append(Problem(line, ProblemKind.BAD_VALUE, column.field, "is empty"))
            continue
        try:
            values[column.field] = column.read(cell)
        except CellError as error:
            problems.append(Problem(line, error.kind, column.field, error.message))
    return values, problems


ROSTER_FIELDS = ("real_name", "id_number", "volunteer_number", "registered_on")


def _build_roster_row(line: int, values: dict[str, Any], now: dt.datetime) -> tuple[RosterRow | None, list[Problem]]:
    if values["registered_on"] > now.date():
        return None, [Problem(line, ProblemKind.BAD_DATE, "registered_on", "is in the future")]
    return RosterRow(line=line, org_code=values.get("org_code"), **{key: values[key] for key in ROSTER_FIELDS}), []


def _roster_across(rows: list[RosterRow]) -> list[Problem]:
    return [
        *_repeats(rows, lambda row: row.volunteer_number, "volunteer_number", "the same 志愿者编号 as line {}"),
        *_repeats(rows, lambda row: row.id_number, "id_number", "the same 身份证号 as line {}"),
    ]


def _build_sign_in_row(line: int, values: dict[str, Any], now: dt.datetime) -> tuple[SignInRow | None, list[Problem]]:
    started = dt.datetime.combine(values["date"], values["start_time"])
    ended = dt.datetime.combine(values["end_date"] or values["date"], values["end_time"])
    problem = None
    if ended <= started:
        problem = ("end_time", "结束时间 must be after 开始时间 (for service past midnight, fill in 结束日期)")
    elif ended - started > DAY:
        problem = ("end_time", "one activity lasts at most 24 hours")
    elif ended > now:
        problem = ("end_time", "is in the future: import service once it is done")
    if problem is not None:
        return None, [Problem(line, ProblemKind.BAD_DATE, *problem)]
    row = SignInRow(
        line=line,
        started=started,
        ended=ended,
        **{key: values[key] for key in SignInRow.__dataclass_fields__ if key in values},
    )
    return row, []


def _sign_in_across(rows: list[SignInRow]) -> list[Problem]:
    repeats = _repeats(rows, SignInRow.content, None, "repeats line {}")
    repeated = {problem.line for problem in repeats}
    overlaps = []
    by_person: dict[str, list[SignInRow]] = {}
    for row in rows:
        if row.line not in repeated:
            by_person.setdefault(row.volunteer_number, []).append(row)
    for person_rows in by_person.values():
        person_rows.sort(key=lambda row: (row.started, row.line))
        latest = person_rows[0]
        for row in person_rows[1:]:
            if row.started < latest.ended:
                span = f"{latest.started:%Y-%m-%d %H:%M}–{latest.ended:%H:%M}"
                overlaps.append(
                    Problem(row.line, ProblemKind.OVERLAPPING_TIME, "start_time", f"overlaps line {latest.line} ({span}) of the same person")
                )
            if row.ended > latest.ended:
                latest = row
    return repeats + overlaps


def _repeats(rows: list, key: Callable[[Any], Any], field_name: str | None, message: str) -> list[Problem]:
    """Return a problem for every row whose ``key`` an earlier row already had."""
    first: dict[Any, int] = {}
    problems = []
    for row in rows:
        earlier = first.setdefault(key(row), row.line)
        if earlier != row.line:
            problems.append(Problem(row.line, ProblemKind.DUPLICATE_ROW, field_name, message.format(earlier)))
    return problems


ORG_CODE = Column(
    "org_code", "组织编码", read_code(64), required=False, help="社区或网格的编码；留空则为导入时选定的组织 (default: the org imported into)"
)

ROSTER = Sheet(
    name="volunteers",
    title="志愿者名册 volunteer roster",
    columns=(
        Column("real_name", "姓名", read_text(100), help="真实姓名 real name"),
        Column("id_number", "身份证号", read_id_number, help="18 位居民身份证号码；只保存摘要与掩码 (stored only as a digest and a mask)"),
        Column("volunteer_number", "志愿者编号", read_code(32), help="字母、数字或 - (letters, digits, -)"),
        Column("registered_on", "注册日期", read_date, help="如 2026-03-07 (a date)"),
        ORG_CODE,
    ),
    build=_build_roster_row,
    across=_roster_across,
)

SIGN_IN = Sheet(
    name="activities",
    title="服务签到表 sign-in sheet",
    columns=(
        Column("volunteer_number", "志愿者编号", read_code(32), help="已登记的志愿者编号 (a registered volunteer's number)"),
        Column("real_name", "姓名", read_text(100), help="与登记姓名一致 (as registered)"),
        Column("activity_type", "服务类型", read_text(40), help="积分规则中的服务类型，如 巡逻 或 patrol (a type of the rules)"),
        Column("date", "服务日期", read_date, help="如 2026-03-07 (the day it started)"),
        Column("start_time", "开始时间", read_time, help="如 09:00"),
        Column("end_time", "结束时间", read_time, help="如 11:30"),
        Column("end_date", "结束日期", read_date, required=False, help="跨过午夜时填写 (only for service past midnight)"),
        ORG_CODE,
        Column("travel_minutes", "路程分钟", read_whole(0, 24 * 60), required=False, default=0, help="往返路程分钟数 (travel minutes)"),
        Column("quantity", "数量", read_whole(1, 10**9), required=False, help="按数量计分的服务类型用 (for types counted per quantity)"),
        Column("tags", "标签", read_tags, required=False, default=(), help="如 emergency，多个用逗号或顿号隔开"),
        Column("description", "服务内容", read_text(MAX_TEXT_LENGTH), required=False, help="活动名称或说明 (what was done)"),
    ),
    build=_build_sign_in_row,
    across=_sign_in_across,
)

SHEETS = {sheet.name: sheet for sheet in (ROSTER, SIGN_IN)}
TEMPLATE_FORMATS = ("xlsx", "csv")


def column_header(sheet: Sheet, field_name: str | None) -> str | None:
    """Return the template's name of a sheet's column, by its field name."""
    return next((column.header for column in sheet.columns if column.field == field_name), None)



def template(sheet: Sheet, format: str) -> bytes:
    """Return an empty file of ``sheet`` to fill in: its header row, and in a workbook a sheet explaining each column."""
    headers = [column.header for column in sheet.columns]
    if format == "csv":
        # The byte-order mark tells Excel the file is UTF-8, so Chinese headers open unscrambled.
        return ("\ufeff" + ",".join(headers) + "\r\n").encode("utf-8")
    if format != "xlsx":
        raise InvalidInput(f"must be one of {', '.join(TEMPLATE_FORMATS)}", field="format")
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    rows = workbook.active
    rows.title = sheet.title.split()[0]
    rows.append(headers)
    explained = workbook.create_sheet("说明")
    explained.append(["列名 column", "字段 field", "必填 required", "说明 what it holds"])
    for column in sheet.columns:
        explained.append([column.header, column.field, "是 yes" if column.required else "否 no", column.help])
    for page in (rows, explained):
        for cell in page[1]:
            cell.font = Font(bold=True)
        for letter in "ABCDEFGHIJKL":
            page.column_dimensions[letter].width = 16
    explained.column_dimensions["D"].width = 60
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()
