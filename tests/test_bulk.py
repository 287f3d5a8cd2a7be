"""Importing service history in bulk (ledger/bulk.py), on SQLite and PostgreSQL.

The core promise: a batch imported with ``import_history`` writes exactly what recording its
services one by one through ``record_activity``, oldest first, would. Two databases cannot be
compared in one test, so each imported person has a twin, registered the same way in the same
place, whose copy of the service is recorded one activity at a time; the twins' activities,
entries, breakdowns, balances and day, month and year totals must come out the same.

The default rules are published at the district (patrol: 10 points an hour, whole half hours,
weekend ×120%, holiday ×150%, night ×120%, ``emergency`` tag ×200%; at most 8 hours a day,
100 points an activity, 300 a month, 2400 a year). Times are Shanghai wall-clock times.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.activities import NotAllowed, Service
from ledger.bulk import MAX_BATCH, HistoryLine, ImportReport, import_history
from ledger.cli.bulk import COLUMNS
from ledger.errors import IdempotencyConflict, InvalidInput, LedgerError, NotFound
from ledger.models import (
    Account,
    Activity,
    AppUser,
    EmployerUnit,
    OrgNode,
    PeriodKind,
    PeriodTotal,
    Transaction,
    TransactionKindCode,
)
from ledger.participants import register_co_building_unit, register_employer_unit, register_party_member
from ledger.replay import replay_ledger
from ledger.transactions import PERIOD_TOTAL_COLUMNS, participant_account
from ledger.verify import verify_ledger
from tests.activity_fixtures import SHANGHAI, Desk, Resident, Totals, at, service
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.refusals import row_counts

#: Every import and recording here happens "now": after all the service it brings in.
NOW = at("2026-11-20 12:00")


def line(reference: str, what: Service, org_id: int) -> HistoryLine:
    return HistoryLine(reference=reference, org_id=org_id, service=what)


def import_lines(desk: Desk, lines: list[HistoryLine], *, actor_id: int | None = None) -> ImportReport:
    """Import one batch in a committed write transaction of its own, as the command does."""
    return desk.write(lambda: import_history(desk.session, actor=desk.user(actor_id), lines=lines, now=NOW))


def record_one_by_one(desk: Desk, services: list[tuple[Service, int]]) -> None:
    """Record each (service, org id) through record_activity, oldest first, each in its own transaction."""
    for what, org_id in sorted(services, key=lambda pair: pair[0].started_at):
        desk.record(what, org_id=org_id, now=NOW)


class Scored(NamedTuple):
    """What scoring one activity wrote, without the ids that differ between twins."""

    activity: tuple
    chain_id: int
    business_date: dt.date
    service_minutes: int
    rule_set_version_id: int
    about_the_person: bool
    breakdown: dict
    #: The person's postings as (amount, balance after, account version); the other side's amounts.
    postings: list[tuple[int, int, int]]
    other_side: list[int]

    @property
    def points(self) -> int:
        return self.breakdown["points"]


def what_was_done(activity: Activity) -> tuple:
    """Return an activity's columns but whose it was."""
    columns = Service.of(activity).activity_columns()
    return tuple(value for name, value in columns.items() if name != "participant_id")


def scored_history(desk: Desk, resident: Resident) -> list[Scored]:
    """Return what scoring each of a person's activities wrote, oldest first."""
    rows = desk.session.execute(
        select(Activity, Transaction)
        .join(Transaction, (Transaction.activity_id == Activity.id) & (Transaction.kind == TransactionKindCode.EARN))
        .where(Activity.participant_id == resident.participant_id)
        .order_by(Activity.started_at)
    ).all()
    history = []
    for activity, transaction in rows:
        mine = [p for p in transaction.postings if p.account_id == resident.account_id]
        others = sorted(p.amount for p in transaction.postings if p.account_id != resident.account_id)
        history.append(
            Scored(
                activity=(activity.org_id, activity.source, *what_was_done(activity)),
                chain_id=transaction.chain_id,
                business_date=transaction.business_date,
                service_minutes=transaction.service_minutes,
                rule_set_version_id=transaction.rule_set_version_id,
                about_the_person=transaction.subject_account_id == resident.account_id,
                breakdown=transaction.breakdown,
                postings=[(p.amount, p.balance_after, p.account_version) for p in mine],
                other_side=others,
            )
        )
    return history


def points_of(desk: Desk, resident: Resident) -> list[int]:
    """Return the points each of a person's activities earned, oldest first."""
    return [scored.points for scored in scored_history(desk, resident)]


def period_totals(desk: Desk, account_id: int) -> dict[tuple[str, dt.date], tuple[int, ...]]:
    rows = desk.session.execute(
        select(PeriodTotal).where(PeriodTotal.account_id == account_id).execution_options(populate_existing=True)
    ).scalars()
    return {(row.period, row.starts_on): tuple(getattr(row, name) for name in PERIOD_TOTAL_COLUMNS) for row in rows}


def account_state(desk: Desk, account_id: int) -> tuple[int, int]:
    account = desk.session.get(Account, account_id, populate_existing=True)
    return account.balance, account.version


def assert_twins_match(desk: Desk, imported: Resident, twin: Resident) -> None:
    """The imported person's ledger is the one-by-one twin's, entry for entry."""
    history = scored_history(desk, imported)
    assert history, "nothing was imported for this person"
    assert history == scored_history(desk, twin)
    assert account_state(desk, imported.account_id) == account_state(desk, twin.account_id)
    assert period_totals(desk, imported.account_id) == period_totals(desk, twin.account_id)


def assert_ledger_verifies_and_replays(desk: Desk) -> None:
    verified = verify_ledger(desk.session)
    assert verified.ok, verified.problems
    replayed = replay_ledger(desk.session)
    assert replayed.ok, replayed.problems


# The core promise: the same ledger as recording one by one.


@pytest.fixture
def tight_caps(desk) -> int:
    """幸福社区 publishes the default rules with small caps (100 a month, 250 a year); return the version id."""
    return desk.publish(desk.street.community, {"caps.points_per_month": 100, "caps.points_per_year": 250}).id


def register_party_member_and_unit(desk: Desk, name: str) -> tuple[Resident, Resident]:
    """Register an in-service party member of the first grid and a co-building unit of 幸福社区."""
    session = desk.session

    def register():
        district = session.get(OrgNode, desk.street.district)
        employer = session.scalar(select(EmployerUnit).where(EmployerUnit.name == "示范区税务局"))
        employer = employer or register_employer_unit(session, org=district, name="示范区税务局")
        member = register_party_member(
            session,
            org=session.get(OrgNode, desk.street.grid),
            real_name=f"{name}党员",
            id_number=valid_id_number(),
            employer=employer,
            reported_on=dt.date(2025, 5, 1),
            id_number_key=ID_NUMBER_KEY,
        )
        unit = register_co_building_unit(
            session,
            community=session.get(OrgNode, desk.street.community),
            name=f"{name}物业",
            unit_kind="property_company",
            reported_on=dt.date(2025, 1, 1),
        )
        return [Resident(p.id, participant_account(session, p.id).id) for p in (member, unit)]

    member, unit = desk.write(register)
    return member, unit


def test_an_import_writes_what_recording_the_services_one_by_one_oldest_first_writes(
    desk, make_resident, runner, tight_caps
):
    street = desk.street
    # A volunteer of the first grid, one registered at 幸福社区 itself, and one of 和平社区 (default caps).
    places = {"grid": street.grid, "community": street.community, "other": street.other_community}
    imported = {where: make_resident(org_id, f"导入{where}") for where, org_id in places.items()}
    twins = {where: make_resident(org_id, f"逐条{where}") for where, org_id in places.items()}
    # An in-service party member of the first grid, and a co-building unit reporting to 幸福社区.
    places |= {"party member": street.grid, "unit": street.community}
    imported["party member"], imported["unit"] = register_party_member_and_unit(desk, "导入")
    twins["party member"], twins["unit"] = register_party_member_and_unit(desk, "逐条")

    def grid_history(pid):
        return [
            service(pid, "2025-12-31 09:00", "11:00"),  # last year: 20
            service(pid, "2026-03-02 09:00", "17:00"),  # 80
            service(pid, "2026-03-03 09:00", "12:00"),  # 30, of which the month cap of 100 leaves 20
            service(pid, "2026-03-04 09:00", "11:00"),  # the month is full: 0, still 120 minutes of service
            service(pid, "2026-04-11 09:00", "11:00"),  # a Saturday: 24
            service(pid, "2026-05-01 09:00", "11:00"),  # Labour Day: 30
            service(pid, "2026-05-06 08:00", "18:00"),  # 8 of 10 hours count: 80, of which the month leaves 70
            service(pid, "2026-05-06 19:00", "20:00"),  # the day's 8 hours are used up: 0
            # An emergency ×200%: 60, of which the year cap of 250 leaves 26; travel does not count for patrols.
            service(pid, "2026-06-03 09:00", "12:00", tags=frozenset({"emergency"}), travel_minutes=30),
            service(pid, "2026-06-10 10:00", "10:30", "micro_wish"),  # the year is full: 0
        ]

    def community_history(pid):
        return [
            service(pid, "2026-03-07 21:00", "23:00"),  # a Saturday night: 24
            service(pid, "2026-10-03 09:00", "11:00"),  # National Day: 30
            service(pid, "2026-10-03 22:00", "2026-10-04 02:00"),  # counts on the holiday it starts on: 60
        ]

    def other_history(pid):
        # Eight hours on each working day of a week: the default month cap of 300 binds on the fourth.
        return [service(pid, f"2026-03-0{day} 09:00", "17:00") for day in range(2, 7)]

    def party_member_history(pid):
        return [
            service(pid, "2026-03-07 09:00", "11:00"),  # a Saturday: 24
            service(pid, "2026-03-09 09:00", "12:00", "elderly_care"),  # 30
        ]

    def unit_history(pid):
        return [
            service(pid, "2026-03-02 09:00", "10:00", "unit_report_in"),  # 50, no service time
            service(pid, "2026-03-03 09:00", "17:00", "unit_staff_sent", quantity=8),  # 5 a person: 40
            # 250 for 25 000 yuan, 100 at most; month and year caps are for people, not units.
            service(pid, "2026-03-04 09:00", "10:00", "unit_donation", quantity=25_000),
        ]

    histories = {
        "grid": grid_history,
        "community": community_history,
        "other": other_history,
        "party member": party_member_history,
        "unit": unit_history,
    }
    lines = [
        line(f"old-{where.replace(' ', '-')}-{number}", what, places[where])
        for where, make in histories.items()
        for number, what in enumerate(make(imported[where].participant_id))
    ]

    # The old system's export is newest first: the import scores oldest first all the same.
    report = import_lines(desk, lines[::-1])
    record_one_by_one(
        desk, [(what, places[where]) for where, make in histories.items() for what in make(twins[where].participant_id)]
    )

    for where in places:
        assert_twins_match(desk, imported[where], twins[where])
    assert points_of(desk, imported["grid"]) == [20, 80, 20, 0, 24, 30, 70, 0, 26, 0]
    assert points_of(desk, imported["community"]) == [24, 30, 60]
    assert points_of(desk, imported["other"]) == [80, 80, 80, 60, 0]
    assert points_of(desk, imported["party member"]) == [24, 30]
    assert points_of(desk, imported["unit"]) == [50, 40, 100]
    categories = {
        where: {scored.breakdown["inputs"]["category"] for scored in scored_history(desk, person)}
        for where, person in imported.items()
    }
    assert categories == {
        "grid": {"volunteer"},
        "community": {"volunteer"},
        "other": {"volunteer"},
        "party member": {"party_member"},
        "unit": {"unit"},
    }
    minutes = sum(s.service_minutes for person in imported.values() for s in scored_history(desk, person))
    assert report == ImportReport(
        imported=len(lines), already_imported=0, points=270 + 114 + 300 + 54 + 190, service_minutes=minutes
    )
    grid = imported["grid"].account_id
    assert desk.totals(grid, PeriodKind.MONTH, dt.date(2026, 3, 1)) == Totals(100, 480 + 180 + 120, 3)
    assert desk.totals(grid, PeriodKind.YEAR, dt.date(2026, 1, 1)).points_earned == 250
    assert {s.rule_set_version_id for s in scored_history(desk, imported["grid"])} == {tight_caps}
    verified = runner.invoke(args=["verify", "--replay"])
    assert verified.exit_code == 0, verified.output
    assert f"Replayed {2 * len(lines)} scored entries" in verified.output


# The same promise over generated history: up to two non-overlapping pieces of service a day.

SLOTS = {"morning": range(0, 6), "afternoon": range(12, 18)}
piece_of_service = st.tuples(
    st.integers(0, 120),  # days after 2026-03-01: weekends, Qingming, Labour Day and Dragon Boat included
    st.sampled_from(sorted(SLOTS)),
    st.integers(0, 5),  # hours into the slot
    st.sampled_from([20, 30, 90, 240, 360]),  # minutes: at most six hours, so slots never meet
    st.sampled_from(["patrol", "policy_publicity", "micro_wish"]),
    st.booleans(),  # tagged emergency
)


@settings(max_examples=6, database=None)
@given(pieces=st.lists(piece_of_service, min_size=1, max_size=6, unique_by=lambda piece: piece[:2]))
def test_any_generated_history_imports_as_recording_it_one_by_one_would(desk, make_resident, tight_caps, pieces):
    imported, twin = make_resident(name="导入"), make_resident(name="逐条")

    def services(pid):
        made = []
        for days, slot, hours, minutes, activity_type, emergency in pieces:
            day = dt.date(2026, 3, 1) + dt.timedelta(days=days)
            start = dt.datetime.combine(day, dt.time(SLOTS[slot][hours]), SHANGHAI)
            made.append(
                Service(
                    pid,
                    activity_type,
                    started_at=start,
                    ended_at=start + dt.timedelta(minutes=minutes),
                    tags=frozenset({"emergency"}) if emergency else frozenset(),
                )
            )
        return made

    lines = [
        line(f"gen-{imported.participant_id}-{n}", what, desk.street.grid)
        for n, what in enumerate(services(imported.participant_id))
    ]
    report = import_lines(desk, lines)
    record_one_by_one(desk, [(what, desk.street.grid) for what in services(twin.participant_id)])

    assert report.imported == len(pieces)
    assert report.points == account_state(desk, imported.account_id)[0]
    assert_twins_match(desk, imported, twin)
    assert_ledger_verifies_and_replays(desk)


# Importing again.


def march_lines(desk: Desk, resident: Resident, prefix: str = "old") -> list[HistoryLine]:
    """Four pieces of a person's service in March 2026, as the old system exported them."""
    pid, grid = resident.participant_id, desk.street.grid
    return [
        line(f"{prefix}-1", service(pid, "2026-03-04 09:00", "11:00"), grid),  # 20
        line(f"{prefix}-2", service(pid, "2026-03-07 09:00", "11:00"), grid),  # a Saturday: 24
        line(f"{prefix}-3", service(pid, "2026-03-11 09:00", "17:00"), grid),  # 80
        line(f"{prefix}-4", service(pid, "2026-03-14 14:00", "16:30"), grid),  # a Saturday: 30
    ]


def test_importing_the_same_lines_again_imports_nothing_and_a_reference_reused_for_other_content_is_refused(
    desk, resident
):
    lines = march_lines(desk, resident)
    first = import_lines(desk, lines)
    before = row_counts(desk.session)

    again = import_lines(desk, lines)

    assert first == ImportReport(imported=4, already_imported=0, points=154, service_minutes=120 + 120 + 480 + 150)
    assert again == ImportReport(imported=0, already_imported=4, points=0, service_minutes=0)
    assert row_counts(desk.session) == before
    assert account_state(desk, resident.account_id) == (154, 4)
    # The Saturday patrol said to end an hour later: the old system's reference no longer means the same service.
    changed = line("old-2", service(resident.participant_id, "2026-03-07 09:00", "12:00"), desk.street.grid)
    refusal = desk.refuse(lambda: import_lines(desk, [lines[0], changed, lines[2]]), IdempotencyConflict)
    assert refusal.field == "lines[1].reference"


def test_an_interrupted_import_completed_by_importing_the_whole_file_adds_only_the_rest(desk, make_resident):
    interrupted, whole = make_resident(name="中断"), make_resident(name="一次")
    lines = march_lines(desk, interrupted)
    import_lines(desk, lines[:2])  # the first batch was committed before the import stopped

    completed = import_lines(desk, lines)
    import_lines(desk, march_lines(desk, whole, prefix="once"))

    assert completed == ImportReport(imported=2, already_imported=2, points=80 + 30, service_minutes=480 + 150)
    keys = desk.session.scalars(
        select(Activity.idempotency_key)
        .where(Activity.participant_id == interrupted.participant_id)
        .order_by(Activity.started_at)
    ).all()
    assert keys == ["import-old-1", "import-old-2", "import-old-3", "import-old-4"]
    assert_twins_match(desk, interrupted, whole)
    assert_ledger_verifies_and_replays(desk)


# Refusals: each names its line and field, and nothing of the batch is written.


class Refusal(NamedTuple):
    #: Builds the batch from the resident's id, an outsider's id (of 和平社区) and the street.
    lines: Callable[[int, int, object], list[HistoryLine]]
    error: type[LedgerError]
    field: str
    #: The resident's service recorded (and accepted) before the import, as (start, end).
    earlier: tuple[tuple[str, str], ...] = ()


#: A patrol the resident already has in the ledger, which a line overlaps.
EARLIER_PATROL = (("2026-03-04 09:00", "11:00"),)
#: Three hours from 22:00 on 2026-03-10, after 22 hours of service that day.
LATE_ON_THE_10TH = ("2026-03-10 22:00", "2026-03-11 01:00")


def good(pid: int, street) -> HistoryLine:
    """A clean first line, so that a refusal of a later line must also undo it."""
    return line("good-1", service(pid, "2026-03-02 09:00", "11:00"), street.grid)


def then(make_line: Callable[[int, int, object], HistoryLine]) -> Callable[[int, int, object], list[HistoryLine]]:
    """A batch of the good line followed by one more."""
    return lambda pid, outsider, street: [good(pid, street), make_line(pid, outsider, street)]


def on_the_4th(start: str, end: str, activity_type: str = "patrol") -> Callable[[int, int, object], HistoryLine]:
    return lambda pid, outsider, street: line(
        "bad-1", service(pid, f"2026-03-04 {start}", end, activity_type), street.grid
    )


def naive(pid: int, outsider: int, street) -> HistoryLine:
    return line("bad-1", Service(pid, "patrol", dt.datetime(2026, 3, 4, 9), dt.datetime(2026, 3, 4, 11)), street.grid)


def day_of_25_hours(pid: int, outsider: int, street) -> list[HistoryLine]:
    # No two of them overlap, but 12 + 10 + 3 hours start on 2026-03-10.
    return [
        good(pid, street),
        line("bad-1", service(pid, "2026-03-10 00:00", "12:00"), street.grid),
        line("bad-2", service(pid, "2026-03-10 12:00", "22:00"), street.grid),
        line("bad-3", service(pid, *LATE_ON_THE_10TH), street.grid),
    ]


REFUSALS = {
    "unknown participant": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(999_999, "2026-03-04 09:00", "11:00"), street.grid)),
        NotFound,
        "lines[1].participant_id",
    ),
    "participant of another community": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(outsider, "2026-03-04 09:00", "11:00"), street.grid)),
        InvalidInput,
        "lines[1].participant_id",
    ),
    "recorded at the district": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(pid, "2026-03-04 09:00", "11:00"), street.district)),
        InvalidInput,
        "org_id",
    ),
    "unknown org": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(pid, "2026-03-04 09:00", "11:00"), 999_999)),
        NotFound,
        "org_id",
    ),
    "unknown activity type": Refusal(
        then(on_the_4th("09:00", "11:00", "juggling")), InvalidInput, "lines[1].activity_type"
    ),
    "unit-only activity type for a volunteer": Refusal(
        then(on_the_4th("09:00", "11:00", "unit_report_in")), InvalidInput, "lines[1].activity_type"
    ),
    "ended in the future": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(pid, "2026-11-20 11:00", "13:00"), street.grid)),
        InvalidInput,
        "lines[1].ended_at",
    ),
    "ends before it starts": Refusal(then(on_the_4th("11:00", "09:00")), InvalidInput, "lines[1].ended_at"),
    "naive datetimes": Refusal(then(naive), InvalidInput, "lines[1].started_at"),
    "no rule set in force (2024)": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(pid, "2024-06-04 09:00", "11:00"), street.grid)),
        NotFound,
        "lines[1].started_at",
    ),
    "starts during an activity in the ledger": Refusal(
        then(on_the_4th("10:30", "12:00")), InvalidInput, "lines[1].started_at", earlier=EARLIER_PATROL
    ),
    "starts before an activity in the ledger and runs into it": Refusal(
        then(on_the_4th("08:00", "09:30")), InvalidInput, "lines[1].started_at", earlier=EARLIER_PATROL
    ),
    "starts before an activity in the ledger and runs past it": Refusal(
        then(on_the_4th("08:00", "12:00")), InvalidInput, "lines[1].started_at", earlier=EARLIER_PATROL
    ),
    "two lines overlap each other": Refusal(
        lambda pid, outsider, street: [
            good(pid, street),
            line("bad-1", service(pid, "2026-03-04 09:00", "11:00"), street.grid),
            line("bad-2", service(pid, "2026-03-04 10:00", "12:00"), street.grid),
        ],
        InvalidInput,
        "lines[2].started_at",
    ),
    "more than 24 hours on one day in the batch": Refusal(day_of_25_hours, InvalidInput, "lines[3].ended_at"),
    "more than 24 hours on one day with the ledger's earlier service": Refusal(
        then(lambda pid, outsider, street: line("bad-1", service(pid, *LATE_ON_THE_10TH), street.grid)),
        InvalidInput,
        "lines[1].ended_at",
        earlier=(("2026-03-10 00:00", "12:00"), ("2026-03-10 12:00", "22:00")),
    ),
    "the same reference twice": Refusal(
        lambda pid, outsider, street: [
            good(pid, street),
            line("good-1", service(pid, "2026-03-04 09:00", "11:00"), street.grid),
        ],
        InvalidInput,
        "lines[1].reference",
    ),
    "a reference with a space": Refusal(
        then(lambda pid, outsider, street: line("bad 1", service(pid, "2026-03-04 09:00", "11:00"), street.grid)),
        InvalidInput,
        "lines[1].reference",
    ),
    "an empty batch": Refusal(lambda pid, outsider, street: [], InvalidInput, "lines"),
    "a batch over MAX_BATCH": Refusal(
        lambda pid, outsider, street: [
            line(f"many-{n}", service(pid, "2026-03-02 09:00", "11:00"), street.grid) for n in range(MAX_BATCH + 1)
        ],
        InvalidInput,
        "lines",
    ),
}


def outcome(desk: Desk, attempt: Callable[[], object]) -> tuple[str, str | None, bool]:
    """Run an import that must be refused: return the refusal's class and field, and whether nothing was written."""
    before = row_counts(desk.session)
    try:
        attempt()
    except LedgerError as refusal:
        return type(refusal).__name__, refusal.field, row_counts(desk.session) == before
    return "imported", None, row_counts(desk.session) == before


def test_each_refused_batch_names_its_line_and_field_and_writes_nothing(desk, make_resident):
    outsider = make_resident(desk.street.other_community, "王芳").participant_id
    outcomes = {}
    for name, case in REFUSALS.items():
        resident = make_resident()  # someone new for each case, so that no case's service meets another's
        for start, end in case.earlier:
            desk.record(service(resident.participant_id, start, end), now=NOW)
        lines = case.lines(resident.participant_id, outsider, desk.street)

        outcomes[name] = outcome(desk, lambda: import_lines(desk, lines))  # noqa: B023 - called at once

    assert outcomes == {name: (case.error.__name__, case.field, True) for name, case in REFUSALS.items()}


def test_a_line_is_refused_when_later_service_that_day_already_in_the_ledger_makes_more_than_24_hours(
    desk, resident
):
    # 12 + 11 hours recorded for 2026-03-12; record_activity refuses two more hours that morning.
    for start, end in (("2026-03-12 10:00", "22:00"), ("2026-03-12 22:00", "2026-03-13 09:00")):
        desk.record(service(resident.participant_id, start, end), now=NOW)
    morning = service(resident.participant_id, "2026-03-12 08:00", "10:00")
    assert desk.refuse(lambda: desk.record(morning, now=NOW)).field == "ended_at"

    lines = [good(resident.participant_id, desk.street), line("bad-1", morning, desk.street.grid)]
    refusal = desk.refuse(lambda: import_lines(desk, lines))

    assert refusal.field == "lines[1].ended_at"


def test_nobody_imports_history_of_their_own_service(desk, resident):
    own_user = desk.add_user("liming", resident.participant_id)
    patrol = service(resident.participant_id, "2026-03-04 09:00", "11:00")
    assert desk.refuse(lambda: desk.record(patrol, actor_id=own_user, now=NOW), NotAllowed).field == "participant_id"

    own_history = [line("own-1", patrol, desk.street.grid)]
    refusal = desk.refuse(lambda: import_lines(desk, own_history, actor_id=own_user), NotAllowed)

    assert refusal.field == "lines[0].participant_id"


# The command line: ledger import-history FILE.csv


HEADER = ",".join(COLUMNS)


def history_file(tmp_path, *rows: str, name: str = "历史记录.csv"):
    path = tmp_path / name
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


def imported_activities(desk: Desk) -> list[tuple[str, int]]:
    return desk.session.execute(
        select(Activity.idempotency_key, Activity.participant_id).order_by(Activity.idempotency_key)
    ).all()


def test_the_command_imports_a_history_file_once_and_says_what_it_imported(
    desk, resident, make_resident, runner, tmp_path
):
    other = make_resident(name="王芳")
    path = history_file(
        tmp_path,
        "A-1,C1-G1,V00001,,patrol,2026-03-04T09:00+08:00,2026-03-04T11:00+08:00,,,,巡逻",
        f"A-2,C1-G1,,{other.participant_id},patrol,2026-03-07T09:00+08:00,2026-03-07T11:00+08:00,15,,emergency;夜间,",
    )

    first = runner.invoke(args=["import-history", str(path)])
    before = row_counts(desk.session)
    again = runner.invoke(args=["import-history", str(path)])

    assert first.exit_code == 0, first.output
    # 20 points, and 2 hours ×200% for the emergency tag (the highest multiplier) on a Saturday: 40.
    assert first.output.strip() == (
        "imported 2 activities (0 were already there): 60 points, 4 hours 0 minutes of service"
    )
    assert again.exit_code == 0, again.output
    assert again.output.strip() == (
        "imported 0 activities (2 were already there): 0 points, 0 hours 0 minutes of service"
    )
    assert row_counts(desk.session) == before
    assert imported_activities(desk) == [("import-A-1", resident.participant_id), ("import-A-2", other.participant_id)]
    system = desk.session.scalar(select(AppUser.id).where(AppUser.username == "system"))
    assert set(desk.session.scalars(select(Activity.recorded_by_id))) == {system}
    assert (account_state(desk, resident.account_id)[0], account_state(desk, other.account_id)[0]) == (20, 40)


def test_a_bad_csv_line_fails_its_whole_batch_and_the_command_names_the_line_it_cannot_read(
    desk, resident, runner, tmp_path
):
    rows = [f"B-{d},C1-G1,V00001,,patrol,2026-03-0{d}T09:00+08:00,2026-03-0{d}T11:00+08:00,,,," for d in range(2, 6)]
    # Line 4 names a volunteer number nobody has; in the other file, line 5 names no activity type of the rules.
    unreadable = history_file(tmp_path, *rows[:2], rows[2].replace("V00001", "V09999"), rows[3], name="unreadable.csv")
    refused = history_file(tmp_path, *rows[:3], rows[3].replace("patrol", "juggling"), name="refused.csv")

    cannot_read = runner.invoke(args=["import-history", str(unreadable), "--batch", "2"])
    written = imported_activities(desk)
    not_scored = runner.invoke(args=["import-history", str(refused), "--batch", "2"])

    assert cannot_read.exit_code == 1
    assert "line 4: no volunteer has number V09999" in cannot_read.output
    # The first batch (lines 2 and 3) was committed; nothing of the second (lines 4 and 5) was.
    assert [key for key, _ in written] == ["import-B-2", "import-B-3"]
    assert not_scored.exit_code == 1
    assert "unknown activity type 'juggling'" in not_scored.output
    # The first batch was there already; line 4, good on its own, went with the refused line 5.
    assert [key for key, _ in imported_activities(desk)] == ["import-B-2", "import-B-3"]
    assert account_state(desk, resident.account_id) == (40, 2)


def test_the_command_names_the_csv_line_of_a_line_the_ledger_refuses(desk, resident, runner, tmp_path):
    path = history_file(
        tmp_path,
        "D-1,C1-G1,V00001,,patrol,2026-03-02T09:00+08:00,2026-03-02T11:00+08:00,,,,",
        "D-2,C1-G1,V00001,,patrol,2026-03-03T09:00+08:00,2026-03-03T11:00+08:00,,,,",
        "D-3,C1-G1,V00001,,patrol,2026-03-04T09:00+08:00,2026-03-04T11:00+08:00,,,,",
        "D-4,C1-G1,V00001,,juggling,2026-03-05T09:00+08:00,2026-03-05T11:00+08:00,,,,",  # line 5
    )

    result = runner.invoke(args=["import-history", str(path), "--batch", "2"])

    assert result.exit_code == 1
    assert "line 5" in result.output, result.output


def test_the_command_counts_blank_lines_when_it_names_a_csv_line(desk, resident, runner, tmp_path):
    path = history_file(
        tmp_path,
        "E-1,C1-G1,V00001,,patrol,2026-03-02T09:00+08:00,2026-03-02T11:00+08:00,,,,",
        "",  # line 3: a blank line, as spreadsheets leave them
        "E-2,C1-G1,V09999,,patrol,2026-03-03T09:00+08:00,2026-03-03T11:00+08:00,,,,",  # line 4
    )

    result = runner.invoke(args=["import-history", str(path)])

    assert result.exit_code == 1
    assert "line 4: no volunteer has number V09999" in result.output, result.output


def test_a_reference_imported_before_in_another_org_is_an_idempotency_conflict(desk, resident):
    import_lines(desk, [line("old-1", service(resident.participant_id, "2026-03-04 09:00", "11:00"), desk.street.grid)])
    elsewhere = line("old-1", service(resident.participant_id, "2026-03-05 09:00", "11:00"), desk.street.community)

    refusal = desk.refuse(lambda: import_lines(desk, [elsewhere]), IdempotencyConflict)

    assert refusal.field == "lines[0].reference"
