"""The benchmark's data set: a district's org tree, its people, and years of their service.

The history goes in through the product's own bulk path (:func:`ledger.bulk.import_history`),
as a district migrating from an old system would bring it, so every entry is scored, chained,
balanced and totalled exactly as the write path does and ``ledger verify`` accepts it. People
are registered with set-based inserts: the product registers one resident at a time, with an
ID-number check this synthetic population has no use for.

The service is skewed like a real district's: each person's share follows a Pareto law, so a
few volunteers serve most days (up to four times a day) and most serve a few times a year.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import multiprocessing
import random
import sys
import time
import zoneinfo
from dataclasses import dataclass
from typing import Iterator

from flask import current_app
from sqlalchemy import func, select, text

from bench.scales import Scale
from ledger.activities import Service
from ledger.bulk import MAX_BATCH, HistoryLine, import_history, insert_rows, reserve_ids
from ledger.db import db, write_transaction
from ledger.models import (
    Account,
    AccountKind,
    AppUser,
    ChainHead,
    CoBuildingUnit,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    Person,
    RuleSetVersion,
    Transaction,
    Volunteer,
    utc_now,
)
from ledger.orgs import create_org_node
from ledger.participants import register_employer_unit
from ledger.rules import publish_document
from ledger.ruleset_schema import default_rules_text
from ledger.users import ensure_user

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
DISTRICT_CODE = "BENCH-D"
IMPORTER, STAFF = "bench-importer", "bench-staff"
HOUR_TYPES = ("volunteer_service", "patrol", "elderly_care", "environment_cleanup", "policy_publicity", "emergency_duty")
#: Local start of each of a person's (at most four) services on one day; none lasts over 3.5 hours, so none overlap.
SLOT_STARTS = (dt.time(7), dt.time(11), dt.time(15), dt.time(19))
#: Shares of the population: co-building units, then in-service party members; the rest volunteer.
UNIT_SHARE, PARTY_MEMBER_SHARE = 0.02, 0.05
PARETO_ALPHA = 1.16  # the "80/20" exponent
#: Processes importing the history side by side on PostgreSQL (the machine has two cores).
IMPORTERS = 2


@dataclass(frozen=True)
class District:
    district_id: int
    street_ids: tuple[int, ...]
    community_ids: tuple[int, ...]
    importer_id: int
    staff_id: int
    first_day: dt.date
    last_day: dt.date
    entries: int


def street_code(number: int) -> str:
    return f"BENCH-S{number:02d}"


def yesterday() -> dt.date:
    """Return the last day of the history: yesterday where the district is, so nothing lies in the future."""
    return dt.datetime.now(ZONE).date() - dt.timedelta(days=1)


def build(scale: Scale, *, seed: int = 9) -> District:
    """Build the scale's district in the current app's database, which must be migrated and empty."""
    rng = random.Random(seed)
    session = db.session
    last_day = yesterday()
    first_day = last_day.replace(year=last_day.year - scale.years + 1, month=1, day=1)
    tree = write_transaction(lambda: _tree(scale, first_day))
    people = _participants(scale, tree, rng)
    importer_id = tree["importer"]
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    history = HistoryShare(current_app.config["SQLALCHEMY_DATABASE_URI"], importer_id, people, first_day, last_day, scale.entries, seed)
    session.remove()
    db.engine.dispose()  # the importers are forked: they must not share this process's connections
    # Communities never share a chain or an account, so each importer takes every other community;
    # SQLite has one writer at a time whatever happens.
    importers = IMPORTERS if on_postgresql else 1
    with multiprocessing.get_context("fork").Pool(importers) as pool:
        imported = sum(pool.starmap(history.import_share, [(share, importers) for share in range(importers)]))
    if on_postgresql:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return District(
        district_id=tree["district"],
        street_ids=tuple(tree["streets"]),
        community_ids=tuple(tree["communities"]),
        importer_id=importer_id,
        staff_id=tree["staff"],
        first_day=first_day,
        last_day=last_day,
        entries=imported,
    )


def _tree(scale: Scale, first_day: dt.date) -> dict:
    """Create the org tree, the users, an employer, and the default rules in force from the history's first day."""
    session = db.session
    district = create_org_node(session, code=DISTRICT_CODE, name="基准区", kind="district")
    streets, communities, places = [], [], {}
    for s in range(1, scale.streets + 1):
        street = create_org_node(session, code=street_code(s), name=f"第{s}街道", kind="street", parent=district)
        streets.append(street.id)
        for c in range(1, scale.communities_per_street + 1):
            code = f"{street_code(s)}-C{c:02d}"
            community = create_org_node(session, code=code, name=f"第{s}街道第{c}社区", kind="community", parent=street)
            communities.append(community.id)
            places[community.id] = [community.id] + [
                create_org_node(session, code=f"{code}-G{g}", name=f"第{g}网格", kind="grid", parent=community).id
                for g in range(1, scale.grids_per_community + 1)
            ]
    importer = ensure_user(session, IMPORTER, "历史数据导入")
    staff = ensure_user(session, STAFF, "社区工作者")
    employer = register_employer_unit(session, org=district, name="基准区机关")
    rules = default_rules_text().replace("effective_from: 2025-01-01", f"effective_from: {first_day.isoformat()}")
    publish_document(session, actor=importer, org=district, text=rules, now=utc_now())
    return dict(
        district=district.id,
        streets=streets,
        communities=communities,
        places=places,
        importer=importer.id,
        staff=staff.id,
        employer=employer.id,
    )


@dataclass(frozen=True)
class _Someone:
    participant_id: int
    org_id: int
    community_id: int
    is_unit: bool


def _participants(scale: Scale, tree: dict, rng: random.Random) -> list[tuple[_Someone, float]]:
    """Register the population, communities of uneven size; return each person with their share of the service."""
    community_weights = [rng.uniform(0.5, 1.5) for _ in tree["communities"]]
    homes = rng.choices(tree["communities"], weights=community_weights, k=scale.participants)
    people = []
    for start in range(0, scale.participants, MAX_BATCH):
        chunk = homes[start : start + MAX_BATCH]
        people += write_transaction(lambda: _register(chunk, start, tree, rng))
    return [(someone, min((1 / (1 - rng.random())) ** (1 / PARETO_ALPHA), 2_000.0)) for someone in people]


def _register(homes: list[int], first_number: int, tree: dict, rng: random.Random) -> list[_Someone]:
    session = db.session
    now = utc_now()
    ids = reserve_ids(session, Participant.__table__, len(homes))
    participants, people, volunteers, party_members, units, accounts, registered = [], [], [], [], [], [], []
    for number, participant_id, community_id in zip(itertools.count(first_number + 1), ids, homes):
        draw = rng.random()
        is_unit = draw < UNIT_SHARE
        org_id = community_id if is_unit else rng.choice(tree["places"][community_id])
        name = f"共建单位{number}" if is_unit else f"居民{number}"
        kind = ParticipantKind.UNIT if is_unit else ParticipantKind.PERSON
        participants.append(dict(id=participant_id, org_id=org_id, kind=kind, display_name=name, ranking_opt_out=False, created_at=now))
        accounts.append(dict(org_id=org_id, kind=AccountKind.PARTICIPANT, participant_id=participant_id, balance=0, version=0))
        joined = dt.date(2020, 1, 1) + dt.timedelta(days=number % 1500)
        if is_unit:
            units.append(dict(participant_id=participant_id, unit_kind="enterprise", credit_code=None, reported_on=joined))
        else:
            people.append(
                dict(
                    participant_id=participant_id,
                    real_name=name,
                    id_number_digest=hashlib.sha256(f"bench-resident-{number}".encode()).hexdigest(),
                    id_number_masked=f"320102********{number % 10_000:04d}",
                    birth_date=dt.date(1950 + number % 50, 1 + number % 12, 1 + number % 28),
                )
            )
            if draw < UNIT_SHARE + PARTY_MEMBER_SHARE:
                party_members.append(dict(participant_id=participant_id, employer_unit_id=tree["employer"], reported_on=joined))
            else:
                volunteers.append(dict(participant_id=participant_id, volunteer_number=f"BV{number:07d}", registered_on=joined))
        registered.append(_Someone(participant_id, org_id, community_id, is_unit))
    insert_rows(session, Participant.__table__, participants)
    insert_rows(session, Person.__table__, people)
    insert_rows(session, Volunteer.__table__, volunteers)
    insert_rows(session, PartyMember.__table__, party_members)
    insert_rows(session, CoBuildingUnit.__table__, units)
    insert_rows(session, Account.__table__, accounts)
    return registered


def _history(
    rng: random.Random, people: list[tuple[_Someone, float]], first_day: dt.date, last_day: dt.date, entries: int
) -> Iterator[tuple[HistoryLine, int]]:
    """Yield about ``entries`` lines of service with their community, day by day, each person at most once per time slot."""
    days = (last_day - first_day).days + 1
    cumulative = list(itertools.accumulate(share for _, share in people))
    per_day = entries / days
    references = itertools.count(1)
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        count = int(per_day) + (rng.random() < per_day % 1)
        slots: dict[int, int] = {}
        for someone, _ in rng.choices(people, cum_weights=cumulative, k=count):
            slot = slots.get(someone.participant_id, 0)
            if slot == len(SLOT_STARTS):
                continue  # a busy volunteer's day is full
            slots[someone.participant_id] = slot + 1
            started_at = dt.datetime.combine(day, SLOT_STARTS[slot], ZONE)
            if someone.is_unit:
                activity_type, minutes, quantity = "unit_staff_sent", 120, rng.randint(1, 8)
            else:
                activity_type, minutes, quantity = rng.choice(HOUR_TYPES), 30 * rng.randint(2, 7), None
            service = Service(
                participant_id=someone.participant_id,
                activity_type=activity_type,
                started_at=started_at,
                ended_at=started_at + dt.timedelta(minutes=minutes),
                quantity=quantity,
            )
            yield HistoryLine(f"bench-{next(references)}", someone.org_id, service), someone.community_id


@dataclass(frozen=True)
class HistoryShare:
    """Everything an importer process needs to import its share of the history."""

    database_url: str
    importer_id: int
    people: list[tuple[_Someone, float]]
    first_day: dt.date
    last_day: dt.date
    entries: int
    seed: int

    def import_share(self, share: int, shares: int) -> int:
        """Import the lines of every ``shares``-th community from ``share`` on; return how many."""
        from ledger import create_app

        app = create_app({"LEDGER_ENV": "development", "SQLALCHEMY_DATABASE_URI": self.database_url})
        communities = sorted({someone.community_id for someone, _ in self.people})
        mine = set(communities[share::shares])
        # Every importer draws the same history from the same seed, and keeps its own communities' lines.
        history = _history(random.Random(self.seed), self.people, self.first_day, self.last_day, self.entries)
        lines = (line for line, community_id in history if community_id in mine)
        started, imported = time.monotonic(), 0
        with app.app_context():
            session = db.session
            for number, batch in enumerate(_batches(lines, MAX_BATCH), 1):
                report = write_transaction(lambda: import_history(session, actor=session.get(AppUser, self.importer_id), lines=batch))
                imported += report.imported
                if number % 10 == 0:
                    rate = imported / (time.monotonic() - started)
                    print(f"  importer {share + 1}/{shares}: {imported:,} entries, {rate:,.0f}/s", file=sys.stderr, flush=True)
            session.remove()
            db.engine.dispose()
        return imported


def _batches(lines: Iterator[HistoryLine], size: int) -> Iterator[list[HistoryLine]]:
    while batch := list(itertools.islice(lines, size)):
        yield batch


def _last_whole_day(session) -> dt.date:
    """Return the last day of the history every importer finished.

    Importers walk the days in order, each through its own communities' chains, and a build
    stopped early leaves each mid-way through a day of its own: every chain's history is whole
    up to the day before the earliest of the chains' last days. "This year" is that day's year.
    """
    last_days = select(func.max(Transaction.business_date).label("last_day")).group_by(Transaction.chain_id).subquery()
    return session.execute(select(func.min(last_days.c.last_day))).scalar_one() - dt.timedelta(days=1)


def find() -> District:
    """Return the district an earlier run built (and kept) in the current app's database."""
    session = db.session
    district = session.execute(select(OrgNode).where(OrgNode.code == DISTRICT_CODE)).scalar_one()

    def ids(kind: str) -> tuple[int, ...]:
        return tuple(
            session.execute(
                select(OrgNode.id).where(OrgNode.kind == kind, OrgNode.path.startswith(district.path)).order_by(OrgNode.id)
            ).scalars()
        )

    def user(name: str) -> int:
        return session.execute(select(AppUser.id).where(AppUser.username == name)).scalar_one()

    return District(
        district_id=district.id,
        street_ids=ids("street"),
        community_ids=ids("community"),
        importer_id=user(IMPORTER),
        staff_id=user(STAFF),
        # The history starts where the district's rules do (see _tree).
        first_day=session.execute(select(func.min(RuleSetVersion.effective_from)).where(RuleSetVersion.org_id == district.id)).scalar_one(),
        last_day=_last_whole_day(session),
        entries=session.execute(select(func.sum(ChainHead.seq))).scalar_one(),
    )
