"""Each measurement: our path and the raw database doing the same work, back to back in one run.

Every function returns :class:`Row`\\ s. A ratio always reads "how our path compares", so each
row says which way its target points: throughputs and speed-ups must reach at least the
target, latencies and durations must stay at most it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import statistics
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Iterator

from flask import Flask
from sqlalchemy import func, select

from bench.dataset import SLOT_STARTS, ZONE, District
from bench.raw import Raw
from ledger.activities import Service, record_activity
from ledger.bulk import HistoryLine, import_history
from ledger.events import Attendee, record_event
from ledger.db import db, write_transaction
from ledger.models import Account, Activity, AppUser, OrgNode, Participant, Volunteer
from ledger.rankings import STANDINGS_CACHE, balance_summary, parse_period, ranking
from ledger.verify import verify_ledger

AT_LEAST, AT_MOST = ">=", "<="
CONCURRENT_WRITERS = 16
BULK_BATCH = 1_000


@dataclass(frozen=True)
class Row:
    path: str
    backend: str
    ours: float
    raw: float
    unit: str
    #: ours ÷ raw, or raw ÷ ours for a speed-up: whichever the target is stated in.
    ratio: float | None
    direction: str
    target: float | None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.target is None:
            return None
        return self.ratio >= self.target if self.direction == AT_LEAST else self.ratio <= self.target


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


class Bench:
    """What every measurement needs: the app, the raw side, the district and fresh service to record."""

    def __init__(self, app: Flask, raw: Raw, district: District):
        self.app, self.raw, self.district = app, raw, district
        self.backend = raw.dialect
        #: Makes this run's idempotency keys its own when a kept district is measured again.
        self.run = f"bench-{time.time_ns():x}"
        self.first_night = self._first_free_night()
        self._slots: dict[int, Iterator[tuple[int, int, int]]] = {}

    def _first_free_night(self) -> dt.date:
        """Return the latest night no earlier run, nor anyone by hand, recorded service in.

        The history's service starts at 07:00 at the earliest, so whatever starts before is a run's.
        """
        if self.backend != "postgresql":
            return self.district.last_day  # a new SQLite file each run
        local_hour = func.extract("hour", func.timezone(ZONE.key, Activity.started_at))
        earliest = db.session.execute(
            select(func.min(Activity.started_at)).where(local_hour < SLOT_STARTS[0].hour)
        ).scalar_one()
        if earliest is None:
            return self.district.last_day
        return earliest.astimezone(ZONE).date() - dt.timedelta(days=1)

    def people_of(self, community_id: int) -> list[tuple[int, int]]:
        """Return ``(participant_id, org_id)`` of the volunteers of a community, by id."""
        community = db.session.get(OrgNode, community_id)
        return list(
            db.session.execute(
                select(Participant.id, Participant.org_id)
                .join(OrgNode, OrgNode.id == Participant.org_id)
                .join(Volunteer, Volunteer.participant_id == Participant.id)
                .where(OrgNode.path.startswith(community.path))
                .order_by(Participant.id)
            ).all()
        )

    def fresh_service(self, community_id: int) -> tuple[int, Service]:
        """Return an org and 30 minutes of service by one of its volunteers that overlaps nothing recorded.

        The history's services start at 07:00 at the earliest, so each night from midnight to
        half past six has room for ten half hours a person; the first free night's first, then
        the nights before it.
        """
        if community_id not in self._slots:
            people = self.people_of(community_id)
            self._slots[community_id] = (
                (participant_id, org_id, slot) for slot in itertools.count() for participant_id, org_id in people
            )
        participant_id, org_id, slot = next(self._slots[community_id])
        day = self.first_night - dt.timedelta(days=slot // 10)
        started_at = dt.datetime.combine(day, dt.time(), ZONE) + dt.timedelta(minutes=40 * (slot % 10))
        service = Service(participant_id, "volunteer_service", started_at, started_at + dt.timedelta(minutes=30))
        return org_id, service

    def record_one(self, community_id: int, key: str) -> None:
        org_id, service = self.fresh_service(community_id)
        session = db.session

        def work():
            actor = session.get(AppUser, self.district.staff_id)
            record_activity(session, actor=actor, org=session.get(OrgNode, org_id), service=service, idempotency_key=key)

        write_transaction(work)

    def raw_write(self, connection, account_id: int, amount: int = 20) -> None:
        """Insert one entry, add it to one balance row, commit: the least a ledger write can be."""
        mark = self.raw.mark
        self.raw.begin(connection)
        cursor = connection.cursor()
        cursor.execute(
            f"INSERT INTO bench_raw_entry (account_id, amount, business_date, hash) VALUES ({mark}, {mark}, {mark}, {mark})",
            (account_id, amount, dt.date.today().isoformat(), hashlib.sha256(str(account_id).encode()).hexdigest()),
        )
        cursor.execute(f"UPDATE bench_raw_balance SET balance = balance + {mark} WHERE account_id = {mark}", (amount, account_id))
        connection.commit()

    def account_ids(self, community_id: int, count: int) -> list[int]:
        ids = [participant_id for participant_id, _ in self.people_of(community_id)[:count]]
        return list(db.session.execute(select(Account.id).where(Account.participant_id.in_(ids))).scalars())


# One write at a time ------------------------------------------------------------------------


def single_writes(bench: Bench, count: int) -> list[Row]:
    community = bench.district.community_ids[0]
    ours = _timed(lambda: [bench.record_one(community, f"{bench.run}-single-{n}") for n in range(count)])
    accounts = bench.account_ids(community, count)
    with closing(bench.raw.connect()) as connection:
        raw = _timed(lambda: [bench.raw_write(connection, accounts[n % len(accounts)]) for n in range(count)])
    return [
        Row(
            "one activity recorded, one commit each",
            bench.backend,
            count / ours,
            count / raw,
            "writes/s",
            _ratio(count / ours, count / raw),
            AT_LEAST,
            0.5,
        )
    ]


def concurrent_writes(bench: Bench, per_writer: int) -> list[Row]:
    """16 writers at once: all in one community (one chain, one balance row raw), then one community each."""
    rows = []
    communities = bench.district.community_ids
    for label, chosen in (
        ("one community", [communities[1 % len(communities)]] * CONCURRENT_WRITERS),
        (f"{CONCURRENT_WRITERS} communities", [communities[n % len(communities)] for n in range(CONCURRENT_WRITERS)]),
    ):
        # Hand out the service first: the writers must not share the slot generators.
        plans = [[bench.fresh_service(community) for _ in range(per_writer)] for community in chosen]
        errors: list[BaseException] = []

        def ours_writer(number: int):
            with bench.app.app_context():
                session = db.session
                try:
                    for index, (org_id, service) in enumerate(plans[number]):
                        write_transaction(
                            lambda: record_activity(
                                session,
                                actor=session.get(AppUser, bench.district.staff_id),
                                org=session.get(OrgNode, org_id),
                                service=service,
                                idempotency_key=f"{bench.run}-concurrent-{label}-{number}-{index}".replace(" ", "-"),
                            )
                        )
                except BaseException as error:  # counted and reported, not raised in a thread
                    errors.append(error)
                finally:
                    session.remove()

        ours = _run_threads(ours_writer)
        balance_rows = [bench.account_ids(community, 1)[0] for community in chosen]
        connections = [bench.raw.connect() for _ in range(CONCURRENT_WRITERS)]
        try:
            raw = _run_threads(lambda n: [bench.raw_write(connections[n], balance_rows[n]) for _ in range(per_writer)])
        finally:
            for connection in connections:
                connection.close()
        total = CONCURRENT_WRITERS * per_writer
        note = f"{len(errors)} errors" + (f" (first: {errors[0]!r})" if errors else "")
        rows.append(
            Row(
                f"{CONCURRENT_WRITERS} concurrent writers, {label}",
                bench.backend,
                total / ours,
                total / raw,
                "writes/s",
                _ratio(total / ours, total / raw) if not errors else 0.0,
                AT_LEAST,
                0.5,
                note,
            )
        )
    return rows


def _run_threads(writer: Callable[[int], object]) -> float:
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(CONCURRENT_WRITERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


# A thousand activities a transaction ------------------------------------------------------------


def bulk_writes(bench: Bench, batches: int) -> list[Row]:
    """An event's sign-in sheet and a history import of 1,000 activities, against executemany + one update + hashing."""
    district, session = bench.district, db.session
    community = district.community_ids[2 % len(district.community_ids)]
    attendees_per_event = min(BULK_BATCH, len(bench.people_of(community)))

    def import_batch(number: int):
        lines = []
        for index in range(BULK_BATCH):
            org_id, service = bench.fresh_service(community)
            lines.append(HistoryLine(f"{bench.run}-bulk-{number}-{index}", org_id, service))
        write_transaction(lambda: import_history(session, actor=session.get(AppUser, district.staff_id), lines=lines))

    def event(number: int):
        # Half past six to seven is free every morning (see fresh_service).
        started_at = dt.datetime.combine(bench.first_night, dt.time(6, 30), ZONE)
        ended_at = started_at + dt.timedelta(minutes=30)
        write_transaction(
            lambda: record_event(
                session,
                actor=session.get(AppUser, district.staff_id),
                org=session.get(OrgNode, community),
                title=f"基准活动{number}",
                activity_type="volunteer_service",
                started_at=started_at,
                ended_at=ended_at,
                attendees=[Attendee(participant_id) for participant_id, _ in bench.people_of(community)[:attendees_per_event]],
                idempotency_key=f"{bench.run}-event-{number}",
            )
        )

    imported = _timed(lambda: [import_batch(n) for n in range(batches)]) / (batches * BULK_BATCH)
    recorded = _timed(lambda: event(0)) / attendees_per_event
    accounts = bench.account_ids(community, BULK_BATCH)
    with closing(bench.raw.connect()) as connection:
        raw = _timed(lambda: [_raw_batch(bench.raw, connection, accounts) for _ in range(batches)]) / (batches * BULK_BATCH)
    return [
        Row(path, bench.backend, 1 / seconds, 1 / raw, "activities/s", raw / seconds, AT_LEAST, 0.5, note)
        for path, seconds, note in (
            ("history import, 1,000 activities per transaction", imported, ""),
            ("event sign-in sheet, one transaction", recorded, f"{attendees_per_event} attendees"),
        )
    ]


def _raw_batch(raw: Raw, connection, account_ids: list[int]) -> None:
    """executemany of the rows, one set-based balance update, a SHA-256 chain over them in Python, one commit."""
    previous, rows = "0" * 64, []
    for account_id in itertools.islice(itertools.cycle(account_ids), BULK_BATCH):
        previous = hashlib.sha256(f"{previous}|{account_id}|20".encode()).hexdigest()
        rows.append((account_id, 20, dt.date.today().isoformat(), previous))
    raw.begin(connection)
    cursor = connection.cursor()
    mark = raw.mark
    cursor.executemany(f"INSERT INTO bench_raw_entry (account_id, amount, business_date, hash) VALUES ({mark}, {mark}, {mark}, {mark})", rows)
    cursor.execute(
        "UPDATE bench_raw_balance SET balance = balance + moved.amount FROM "
        "(SELECT account_id, SUM(amount) AS amount FROM bench_raw_entry WHERE id > (SELECT MAX(id) - 1000 FROM bench_raw_entry) GROUP BY account_id) AS moved "
        "WHERE bench_raw_balance.account_id = moved.account_id"
    )
    connection.commit()


# Reads ----------------------------------------------------------------------------------------


def balance_reads(bench: Bench, count: int) -> list[Row]:
    """A participant's balance, star level and own rank (what a phone shows first), against a primary-key lookup."""
    session = db.session
    community_id = bench.district.community_ids[3 % len(bench.district.community_ids)]
    people = [participant_id for participant_id, _ in bench.people_of(community_id)][:count]
    community = session.get(OrgNode, community_id)

    def standing(participant_id: int):
        participant = session.get(Participant, participant_id)
        return balance_summary(session, participant=participant, community=community, today=bench.district.last_day, public=False)

    ours = _latencies(people, standing, session.rollback)
    accounts = bench.account_ids(community_id, count)
    with closing(bench.raw.connect()) as connection:
        cursor = connection.cursor()

        def lookup(account_id: int):
            cursor.execute(f"SELECT balance, version FROM account WHERE id = {bench.raw.mark}", (account_id,))
            return cursor.fetchone()

        raw = _latencies(accounts, lookup, connection.rollback)
    p50, raw_p50 = statistics.median(ours), statistics.median(raw)
    return [
        Row("balance, star level and own rank (p50)", bench.backend, p50 * 1e3, raw_p50 * 1e3, "ms", p50 / raw_p50, AT_MOST, 3.0)
    ]


def _latencies(keys, read: Callable, end_read: Callable) -> list[float]:
    times = []
    for key in keys:
        started = time.perf_counter()
        read(key)
        end_read()  # each read its own transaction, as each request is
        times.append(time.perf_counter() - started)
    return times


def ranking_reads(bench: Bench, pages: int) -> list[Row]:
    """Top 50 of a community and of a street for this year, against GROUP BY over the year's postings."""
    session = db.session
    district = bench.district
    year = parse_period(str(district.last_day.year))
    rows = []
    for label, org_id in (("community", district.community_ids[3 % len(district.community_ids)]), ("street", district.street_ids[0])):
        org = session.get(OrgNode, org_id)
        written = next(c for c in district.community_ids if session.get(OrgNode, c).path.startswith(org.path))

        def page(*, before: Callable[[], object] = lambda: None):
            before()
            return _timed(lambda: (ranking(session, org=org, category="volunteer", period=year, public=False, limit=50), session.rollback()))

        # Kept: the ranking as most reads find it, kept since the last write in the subtree.
        ours = statistics.median([page() for _ in range(pages)])
        # After a write: one activity recorded in a community of the subtree, so its org's totals are read again.
        after_write = statistics.median(
            [page(before=lambda: bench.record_one(written, f"{bench.run}-rank-{label}-{n}")) for n in range(pages)]
        )
        # Cold: nothing kept (a process's first read), so every org's totals are read.
        afresh = statistics.median([page(before=STANDINGS_CACHE.clear) for _ in range(pages)])
        mark = bench.raw.mark
        query = (
            "SELECT posting.account_id, SUM(posting.amount) AS points FROM posting"
            " JOIN ledger_transaction ON ledger_transaction.id = posting.transaction_id"
            " JOIN account ON account.id = posting.account_id"
            " JOIN org_node ON org_node.id = account.org_id"
            f" WHERE ledger_transaction.business_date BETWEEN {mark} AND {mark} AND account.kind = 'participant'"
            f" AND org_node.path LIKE {mark} GROUP BY posting.account_id ORDER BY points DESC LIMIT 50"
        )
        with closing(bench.raw.connect()) as connection:
            cursor = connection.cursor()
            raw = statistics.median(
                [_timed(lambda: cursor.execute(query, (year.start.isoformat(), year.end.isoformat(), org.path + "%")).fetchall()) for _ in range(pages)]
            )
        rows += [
            Row(f"ranking page, top 50 of a {label}, this year (p50)", bench.backend, ours * 1e3, raw * 1e3, "ms", raw / ours, AT_LEAST, 20.0, "ratio: raw ÷ ours"),
            *(
                Row(f"ranking page, top 50 of a {label}, {when} (p50)", bench.backend, seconds * 1e3, raw * 1e3, "ms", raw / seconds, AT_LEAST, None, "ratio: raw ÷ ours; no target")
                for when, seconds in (("first read after a write there", after_write), ("cold, nothing kept", afresh))
            ),
        ]
    return rows


def verify_run(bench: Bench) -> list[Row]:
    """``ledger verify`` over everything, against streaming the same rows and hashing each."""
    session = db.session
    started = time.perf_counter()
    report = verify_ledger(session)
    ours = time.perf_counter() - started
    session.rollback()
    query = (
        "SELECT t.id, t.chain_id, t.seq, t.prev_hash, t.hash, t.org_id, t.kind, t.business_date, t.recorded_at,"
        " t.recorded_by_id, t.idempotency_key, t.request_digest, t.activity_id, t.rule_set_version_id, t.breakdown,"
        " t.memo, t.service_minutes, t.subject_account_id, p.account_id, p.amount, p.balance_after, p.account_version"
        " FROM ledger_transaction t LEFT JOIN posting p ON p.transaction_id = t.id ORDER BY t.chain_id, t.seq, p.account_id"
    )
    with closing(bench.raw.connect()) as connection:
        raw = _timed(lambda: _stream_and_hash(bench.raw, connection, query))
    note = f"{report.transactions:,} transactions, {report.postings:,} postings: " + (
        "verify passes" if report.ok else f"verify FAILS: {report.problems[:3]}"
    )
    return [Row("ledger verify, whole ledger", bench.backend, ours, raw, "s", ours / raw if report.ok else None, AT_MOST, 3.0, note)]


def _stream_and_hash(raw: Raw, connection, query: str) -> None:
    with closing(raw.streaming_cursor(connection)) as cursor:
        cursor.execute(query)
        for row in cursor:
            hashlib.sha256(repr(row).encode()).hexdigest()
