"""Bringing history in from an old system: ``ledger import-history``."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
from contextlib import contextmanager
from typing import Iterator

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ledger.activities import Service
from ledger.bulk import MAX_BATCH, HistoryLine, import_history
from ledger.cli.common import ACTOR_OPTION, actor_named, refusals_as_messages
from ledger.db import db, write_transaction
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.models import OrgNode, Volunteer

#: The columns of a history file; ``volunteer`` (a number) or ``participant`` (an id) names the person.
COLUMNS = (
    "reference",
    "org",
    "volunteer",
    "participant",
    "activity_type",
    "started_at",
    "ended_at",
    "travel_minutes",
    "quantity",
    "tags",
    "description",
)


@click.command("import-history")
@click.argument("history_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, MAX_BATCH), help="Lines per database transaction.")
@ACTOR_OPTION
@with_appcontext
@refusals_as_messages
def import_history_command(history_file, batch: int, username: str) -> None:
    """Import an old system's service history from a CSV file, scoring each activity under the rules in force.

    Columns: reference, org (code), volunteer (number) or participant (id), activity_type,
    started_at and ended_at (ISO 8601 with offset), travel_minutes, quantity, tags (separated
    by ;), description. Lines are imported a batch per database transaction; running the same
    file again imports only the lines that are not there yet.
    """
    imported = already = points = minutes = 0
    rows = csv.DictReader(history_file)
    missing = {"reference", "org", "activity_type", "started_at", "ended_at"} - set(rows.fieldnames or ())
    if missing:
        raise InvalidInput(f"the file has no column {', '.join(sorted(missing))}; columns: {', '.join(COLUMNS)}", field="history_file")
    for records in _batches(_numbered(rows), batch):

        def work():
            with _refusals_naming_the_csv_line([number for number, _ in records]):
                return import_history(db.session, actor=actor_named(username), lines=_history_lines(records))

        report = write_transaction(work)
        imported += report.imported
        already += report.already_imported
        points += report.points
        minutes += report.service_minutes
    click.echo(
        f"imported {imported} activities ({already} were already there): "
        f"{points} points, {minutes // 60} hours {minutes % 60} minutes of service"
    )


def _numbered(rows: csv.DictReader) -> Iterator[tuple[int, dict]]:
    """Pair each record with the file's line it ends on, counting blank lines and line breaks within quotes."""
    for record in rows:
        yield rows.line_num, record


def _batches(records: Iterator[tuple[int, dict]], size: int) -> Iterator[list[tuple[int, dict]]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


@contextmanager
def _refusals_naming_the_csv_line(line_numbers: list[int]):
    """Say ``line 7: …`` for a refusal the import names ``lines[3].started_at``: the operator has the file, not the batch."""
    try:
        yield
    except LedgerError as refusal:
        found = re.fullmatch(r"lines\[(\d+)\]\.?(.*)", refusal.field or "")
        if found is None:
            raise
        refusal.field = found.group(2) or None
        refusal.message = f"line {line_numbers[int(found.group(1))]}: {refusal.message}"
        raise


def _history_lines(records: list[tuple[int, dict]]) -> list[HistoryLine]:
    """Turn a batch of CSV records into history lines, finding orgs by code and volunteers by number."""
    orgs = dict(db.session.execute(select(OrgNode.code, OrgNode.id).where(OrgNode.code.in_({r["org"] for _, r in records}))).all())
    numbers = {r["volunteer"] for _, r in records if r.get("volunteer")}
    volunteers = dict(
        db.session.execute(
            select(Volunteer.volunteer_number, Volunteer.participant_id).where(Volunteer.volunteer_number.in_(numbers))
        ).all()
    )
    lines = []
    for number, record in records:
        where = f"line {number}"
        if record["org"] not in orgs:
            raise NotFound(f"{where}: no org node has code {record['org']!r}", field="org")
        lines.append(
            HistoryLine(
                reference=record["reference"],
                org_id=orgs[record["org"]],
                service=Service(
                    participant_id=_participant_id(record, volunteers, where),
                    activity_type=record["activity_type"],
                    started_at=_moment(record["started_at"], where, "started_at"),
                    ended_at=_moment(record["ended_at"], where, "ended_at"),
                    travel_minutes=_whole(record.get("travel_minutes"), where, "travel_minutes") or 0,
                    quantity=_whole(record.get("quantity"), where, "quantity"),
                    tags=frozenset(tag.strip() for tag in (record.get("tags") or "").split(";") if tag.strip()),
                    description=record.get("description") or None,
                ),
            )
        )
    return lines


def _participant_id(record: dict, volunteers: dict[str, int], where: str) -> int:
    if record.get("volunteer"):
        if record["volunteer"] not in volunteers:
            raise NotFound(f"{where}: no volunteer has number {record['volunteer']}", field="volunteer")
        return volunteers[record["volunteer"]]
    participant_id = _whole(record.get("participant"), where, "participant")
    if participant_id is None:
        raise InvalidInput(f"{where}: give a volunteer number or a participant id", field="volunteer")
    return participant_id


def _moment(value: str, where: str, field: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(f"{where}: {value!r} is not a date and time with its offset, such as 2025-03-01T09:00+08:00", field=field)
    return moment


def _whole(value: str | None, where: str, field: str) -> int | None:
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"{where}: {value!r} is not a whole number", field=field)
    return int(value)


COMMANDS = (import_history_command,)
