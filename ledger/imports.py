"""Bulk import: a roster of volunteers or a sign-in sheet, each row through the service that records one.

A file is read and every row checked first (:mod:`ledger.import_rows`: values, dates, rows
that repeat or overlap each other). Then each remaining row is tried against the ledger in a
savepoint of its own: a volunteer through :func:`~ledger.participants.register_volunteer`, a
line of service through :func:`~ledger.activities.record_activity`, and so through the one
ledger write path with its rules, overlap checks and idempotency. A row the ledger refuses is
rolled back to its savepoint and reported with its line and why; the others stand.

What becomes of the whole is the caller's choice: :func:`rehearse` rolls everything back (a
check, whose report says exactly what an import would do while writing nothing), and an import
commits it in one database transaction, so that a process killed midway leaves nothing
half-written and importing the file again completes it.

Everything the import is for lies in one org, the importer's: every row's org is that org or
under it (else the row is *out of scope*), and so is every person named (else the person is
*unknown*, exactly as if not registered, so that an import reveals nobody outside it).

Idempotent: a line of service is recorded under a key derived from what the row says (org,
person, type, times, travel, quantity, tags, description), so importing a file again, or a
corrected copy of it, replays the rows already in and writes only what is new; a volunteer
whose number is registered to the same person is counted as already imported.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import chain, identity
from ledger.activities import Service, record_activity
from ledger.db import write_transaction
from ledger.errors import AlreadyExists, InvalidInput, LedgerError, NotFound
from ledger.import_rows import Checked, Problem, ProblemKind, RosterRow, Sheet, SignInRow, read_table
from ledger.models import AppUser, OrgNode, Participant, Person, Volunteer, utc_now
from ledger.participants import register_volunteer
from ledger.rules import rules_of, version_in_force

T = TypeVar("T")

#: Which column of a sheet a service's refusal is about, by the field the service names.
SHEET_FIELDS = {
    "participant_id": "volunteer_number",
    "org": "org_code",
    "started_at": "start_time",
    "ended_at": "end_time",
}
#: What a recording or registration service's refusal of a row means, by the field it names.
SERVICE_REFUSALS = {
    #: The person does not belong where the service was recorded.
    "participant_id": ProblemKind.OUT_OF_SCOPE,
    "org": ProblemKind.OUT_OF_SCOPE,
    #: The only refusal of a start time a checked row can get: it overlaps the person's other service.
    "started_at": ProblemKind.OVERLAPPING_TIME,
}


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or in a check would do: rows written, rows already in, and every problem."""

    sheet: str
    #: Rows read from the file, good and bad.
    rows: int
    #: Rows written (in a check: that an import would write).
    imported: int
    #: Rows the ledger already holds, from an earlier import of them.
    already_imported: int
    problems: tuple[Problem, ...]

    @property
    def bad_rows(self) -> int:
        return len({problem.line for problem in self.problems})


def check_file(sheet: Sheet, content: bytes, org: OrgNode, *, now: dt.datetime | None = None) -> Checked:
    """Read a file and check its rows on their own and against each other (no database)."""
    local_now = (now or utc_now()).astimezone(zoneinfo.ZoneInfo(org.time_zone)).replace(tzinfo=None)
    return sheet.check(read_table(content), now=local_now)


def import_rows(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    checked: Checked,
    sheet: Sheet,
    id_number_key: str,
    now: dt.datetime | None = None,
    on_row: Callable[[], object] = lambda: None,
) -> ImportReport:
    """Try each checked row against the ledger, in file order; ``on_row`` is called after each."""
    importer = _RosterImport if sheet.name == "volunteers" else _SignInImport
    run = importer(session, actor=actor, scope=org, id_number_key=id_number_key, now=now or utc_now())
    imported = already = 0
    problems = list(checked.problems)
    for row in checked.rows:
        try:
            with session.begin_nested():
                replayed = run.row(row)
        except _RowRefused as refused:
            problems.append(Problem(row.line, refused.kind, refused.field, refused.message))
        except LedgerError as refusal:
            problems.append(_problem(row.line, refusal, sheet))
        else:
            already += replayed
            imported += not replayed
        on_row()
    return ImportReport(
        sheet=sheet.name,
        rows=checked.total,
        imported=imported,
        already_imported=already,
        problems=tuple(sorted(problems, key=lambda problem: problem.line)),
    )


class _Rehearsed(Exception):
    def __init__(self, result):
        self.result = result


def rehearse(work: Callable[[], T]) -> T:
    """Run ``work`` in a write transaction, as an import would, then roll it all back; return its result."""

    def undone():
        raise _Rehearsed(work())

    try:
        write_transaction(undone)
    except _Rehearsed as rehearsal:
        return rehearsal.result
    raise AssertionError("unreachable")


class _RowRefused(Exception):
    """Raised for a row the import itself refuses (its org or person is not the importer's)."""

    def __init__(self, kind: ProblemKind, field: str, message: str):
        super().__init__(message)
        self.kind, self.field, self.message = kind, field, message


def _problem(line: int, refusal: LedgerError, sheet: Sheet) -> Problem:
    """Say which kind of problem a service's refusal of a row is, and which column it is about."""
    field = SHEET_FIELDS.get(refusal.field, refusal.field)
    if field not in {column.field for column in sheet.columns}:
        field = None
    if isinstance(refusal, AlreadyExists):
        kind = ProblemKind.ALREADY_REGISTERED
    elif isinstance(refusal, NotFound):
        kind = ProblemKind.UNKNOWN_PERSON if refusal.field == "participant_id" else ProblemKind.REFUSED
    elif isinstance(refusal, InvalidInput):
        kind = SERVICE_REFUSALS.get(refusal.field, ProblemKind.BAD_VALUE if field else ProblemKind.REFUSED)
    else:
        kind = ProblemKind.REFUSED
    return Problem(line, kind, field, refusal.message)


class _Import:
    """What importing either sheet needs: the importer's org, and the orgs its rows name."""

    def __init__(self, session: Session, *, actor: AppUser, scope: OrgNode, id_number_key: str, now: dt.datetime):
        self.session, self.actor, self.scope = session, actor, scope
        self.id_number_key, self.now = id_number_key, now
        self._orgs: dict[str, OrgNode | None] = {}

    def org_of(self, code: str | None) -> OrgNode:
        """Return the org a row names (the importer's if none), refusing one outside the importer's."""
        if code is None:
            return self.scope
        if code not in self._orgs:
            self._orgs[code] = self.session.execute(
                select(OrgNode).where(OrgNode.code == code, OrgNode.path.startswith(self.scope.path))
            ).scalar_one_or_none()
        org = self._orgs[code]
        if org is None:
            raise _RowRefused(
                ProblemKind.OUT_OF_SCOPE, "org_code", f"组织编码 {code} is not {self.scope.name} or an org under it"
            )
        return org

    def row(self, row) -> bool:
        """Write one row; return whether it was already there."""
        raise NotImplementedError


class _RosterImport(_Import):
    def row(self, row: RosterRow) -> bool:
        org = self.org_of(row.org_code)
        taken = self.session.execute(
            select(Volunteer).where(Volunteer.volunteer_number == row.volunteer_number)
        ).scalar_one_or_none()
        if taken is not None:
            person = taken.person
            if (person.id_number_digest, person.real_name, person.participant.org_id) != (
                identity.id_digest(row.id_number, self.id_number_key),
                row.real_name,
                org.id,
            ):
                raise _RowRefused(
                    ProblemKind.ALREADY_REGISTERED,
                    "volunteer_number",
                    f"志愿者编号 {row.volunteer_number} is already registered to someone else",
                )
            return True
        register_volunteer(
            self.session,
            org=org,
            real_name=row.real_name,
            id_number=row.id_number,
            volunteer_number=row.volunteer_number,
            registered_on=row.registered_on,
            id_number_key=self.id_number_key,
        )
        return False


class _SignInImport(_Import):
    def __init__(self, session: Session, **kwargs):
        super().__init__(session, **kwargs)
        self._type_codes: dict[tuple[int, dt.date], dict[str, str]] = {}

    def row(self, row: SignInRow) -> bool:
        org = self.org_of(row.org_code)
        participant = self._volunteer(row)
        zone = zoneinfo.ZoneInfo(org.time_zone)
        service = Service(
            participant_id=participant.id,
            activity_type=self._type_code(org, row.started.date(), row.activity_type),
            started_at=row.started.replace(tzinfo=zone),
            ended_at=row.ended.replace(tzinfo=zone),
            travel_minutes=row.travel_minutes,
            quantity=row.quantity,
            tags=frozenset(row.tags),
            description=row.description,
        )
        key = "sheet:" + chain.digest({"org": org.id, **service.document()})[:40]
        recorded = record_activity(
            self.session, actor=self.actor, org=org, service=service, idempotency_key=key, now=self.now
        )
        return recorded.replayed

    def _volunteer(self, row: SignInRow) -> Participant:
        """Return the volunteer a row names, if registered within the importer's org and under that name."""
        found = self.session.execute(
            select(Participant, Person.real_name)
            .join(Person, Person.participant_id == Participant.id)
            .join(Volunteer, Volunteer.participant_id == Person.participant_id)
            .join(OrgNode, OrgNode.id == Participant.org_id)
            .where(Volunteer.volunteer_number == row.volunteer_number, OrgNode.path.startswith(self.scope.path))
        ).one_or_none()
        if found is None:
            raise _RowRefused(
                ProblemKind.UNKNOWN_PERSON,
                "volunteer_number",
                f"no volunteer numbered {row.volunteer_number} is registered in {self.scope.name}",
            )
        participant, real_name = found
        if real_name != row.real_name:
            raise _RowRefused(
                ProblemKind.UNKNOWN_PERSON,
                "real_name",
                f"volunteer {row.volunteer_number} is registered as {real_name}, not {row.real_name}",
            )
        return participant

    def _type_code(self, org: OrgNode, day: dt.date, given: str) -> str:
        """Return the activity type's code, the sheet having named it by its code or its Chinese or English label."""
        if (org.id, day) not in self._type_codes:
            try:
                types = rules_of(version_in_force(self.session, org, day)).activity_types
            except NotFound:
                types = {}  # recording refuses the row, saying no rules are in force
            self._type_codes[org.id, day] = {
                name: code for code, kind in types.items() for name in (code, kind.label.zh, kind.label.en)
            }
        return self._type_codes[org.id, day].get(given, given)
