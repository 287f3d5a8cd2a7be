"""Import service history in bulk: an old system's activities, scored and posted a batch at a time.

A deployment that replaces an older system brings years of recorded service with it.
Recording each activity through :func:`ledger.activities.record_activity` costs a dozen round
trips an activity (days, for ten million); this path costs a few set-based statements a batch
and writes exactly what recording the batch's activities one by one, oldest first, would have:

* each line becomes an activity recorded by the importing user, scored under the rule set in
  force on its day with what the person had earned before it (so ``ledger verify --replay``
  reproduces every entry), and an ``earn`` transaction from its org's issuance account;
* postings carry running balances and account versions, each community's chain grows link by
  link with the same canonical hash, and day, month and year totals move with them;
* the checks of recording one activity hold for every line: times, activity type and category,
  the person belongs where the service was recorded, no overlap with their other service, at
  most 24 hours of service on one day.

Each line carries the old system's reference, and its activity's idempotency key is
``import-<reference>``: importing a file again, or the rest of an interrupted import, adds only
what is not there yet. The caller commits each batch (:func:`ledger.db.write_transaction`);
on PostgreSQL the activities, transactions and postings go in with ``COPY``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterable, Sequence

import orjson
from sqlalchemy import JSON, Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger import chain
from ledger.activities import DAY_MINUTES, NotAllowed, Service, active_activities, category_of, check_service, on_line
from ledger.db import among
from ledger.errors import IdempotencyConflict, InvalidInput, NotFound
from ledger.models import (
    Account,
    AccountKind,
    Activity,
    ActivitySource,
    AppUser,
    OrgKind,
    OrgNode,
    Participant,
    PartyMember,
    PeriodKind,
    PeriodTotal,
    Posting,
    RuleSetStatus,
    RuleSetVersion,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.orgs import local_date, path_ids
from ledger.points import MAX_BALANCE, score_activity, transfer
from ledger.replay import RunningTotals
from ledger.rules import choose_version, rules_of
from ledger.transactions import (
    IDEMPOTENCY_KEY_PATTERN,
    PERIOD_TOTAL_COLUMNS,
    Entry,
    activity_count_change,
    entry_content,
    lock_accounts,
    lock_chains,
    period_effects,
    period_starts,
)

#: Lines one call takes. Its locks are held until the caller commits, and a batch's ids go to
#: the database as bound parameters, of which SQLite and PostgreSQL take some tens of thousands.
MAX_BATCH = 10_000


@dataclass(frozen=True)
class HistoryLine:
    """One activity of the old system: its reference there, where it was recorded, and the service."""

    reference: str
    org_id: int
    service: Service

    @property
    def idempotency_key(self) -> str:
        return f"import-{self.reference}"


@dataclass(frozen=True)
class ImportReport:
    imported: int
    #: Lines an earlier import already brought in, with the same content.
    already_imported: int
    points: int
    service_minutes: int


@dataclass(frozen=True)
class _Person:
    account_id: int
    path: str
    kind: str
    reported_in_as_party_member: bool


@dataclass(frozen=True)
class PendingActivity:
    """One activity a batch adds, scores and posts: the service, where, and what makes it idempotent."""

    #: Its position in the caller's list, which a refusal names (``attendees[3]``).
    line: int
    org_id: int
    service: Service
    idempotency_key: str
    request_digest: str
    source: str = ActivitySource.STAFF
    event_id: int | None = None


def import_history(
    session: Session, *, actor: AppUser, lines: Sequence[HistoryLine], now: dt.datetime | None = None
) -> ImportReport:
    """Import one batch of history lines in the caller's write transaction; refuse the batch on any bad line.

    A refusal names the line (``lines[3].started_at``); nothing of the batch is written.
    """
    now = now or utc_now()
    if not 1 <= len(lines) <= MAX_BATCH:
        raise InvalidInput(f"a batch has 1 to {MAX_BATCH} lines", field="lines")
    _check_lines(lines, now)
    orgs = _orgs(session, {line.org_id for line in lines})
    lock_chains(session, {org.chain_id for org in orgs.values()})
    digests = [chain.digest({"org": line.org_id, **line.service.document()}) for line in lines]
    done = _already_imported(session, actor, lines, digests)
    pending = [
        PendingActivity(index, line.org_id, line.service, line.idempotency_key, digests[index])
        for index, line in enumerate(lines)
        if index not in done
    ]
    if not pending:
        return ImportReport(0, len(done), 0, 0)
    points, minutes = score_and_post_batch(session, actor=actor, orgs=orgs, pending=pending, lines="lines", now=now)
    return ImportReport(len(pending), len(done), points, minutes)


def score_and_post_batch(
    session: Session,
    *,
    actor: AppUser,
    orgs: dict[int, OrgNode],
    pending: Sequence[PendingActivity],
    lines: str,
    now: dt.datetime,
) -> tuple[int, int]:
    """Add, score and post a batch of checked activities, oldest first; return the points and minutes earned.

    The caller has checked each service's own fields (:func:`ledger.activities.check_service`),
    and has usually locked the chains of ``orgs`` already, to look for an earlier request; taking
    them again here costs nothing. A refusal names the line (``lines[3].participant_id``) and
    leaves the caller's write transaction to roll back.
    """
    pending = sorted(pending, key=lambda item: (item.service.started_at, item.idempotency_key))
    chains = lock_chains(session, {org.chain_id for org in orgs.values()})
    people = _people(session, {item.service.participant_id for item in pending})
    for item in pending:
        with on_line(lines, item.line):
            if actor.participant_id == item.service.participant_id:
                raise NotAllowed("nobody records points for themselves", field="participant_id")
            _check_place(item, orgs, people)
    _check_no_overlap(session, pending, orgs, lines)

    issuance = dict(
        session.execute(
            select(Account.org_id, Account.id).where(
                Account.org_id.in_(orgs), Account.kind == AccountKind.ISSUANCE, Account.participant_id.is_(None)
            )
        ).all()
    )
    accounts = lock_accounts(session, [p.account_id for p in people.values()] + list(issuance.values()))
    balances = {account_id: [account.balance, account.version] for account_id, account in accounts.items()}
    running = _running_totals(session, people, pending, orgs)
    versions = _published_versions(session, orgs.values())
    activity_ids = reserve_ids(session, Activity.__table__, len(pending))
    transaction_ids = reserve_ids(session, Transaction.__table__, len(pending))

    activity_rows, transaction_rows, posting_rows = [], [], []
    touched_totals: set[tuple[int, str, dt.date]] = set()
    in_force: dict[tuple[int, dt.date], RuleSetVersion] = {}
    points = minutes = 0
    for item, activity_id, transaction_id in zip(pending, activity_ids, transaction_ids):
        org = orgs[item.org_id]
        person = people[item.service.participant_id]
        with on_line(lines, item.line):
            day = local_date(item.service.started_at, org)
            if (org.id, day) not in in_force:
                in_force[org.id, day] = choose_version(versions, org, day)
            version = in_force[org.id, day]
            category = category_of(person.kind, reported_in_as_party_member=person.reported_in_as_party_member)
            score = score_activity(
                item.service.facts(category, org.time_zone), rules_of(version), running.earned_before(person.account_id, day)
            )
        activity_rows.append(_activity_row(item, activity_id, actor, now))
        legs = transfer(issuance[org.id], person.account_id, score.points) if score.points else ()
        entry = Entry(
            org=org,
            kind=TransactionKindCode.EARN,
            legs=legs,
            business_date=score.business_date,
            idempotency_key=f"activity-{activity_id}",
            memo=None,
            breakdown=score.breakdown,
            activity_id=activity_id,
            rule_set_version_id=version.id,
            service_minutes=score.service_minutes,
            subject_account_id=person.account_id,
        )
        postings = []
        for leg in legs:
            balance = balances[leg.account_id]
            balance[0] += leg.amount
            balance[1] += 1
            if abs(balance[0]) > MAX_BALANCE:
                raise InvalidInput(f"account {leg.account_id} would pass the largest balance, {MAX_BALANCE}", field=f"{lines}[{item.line}]")
            postings.append(chain.PostingLink(leg.account_id, leg.amount, balance[0], balance[1]))
            posting_rows.append(
                dict(transaction_id=transaction_id, account_id=leg.account_id, amount=leg.amount, balance_after=balance[0], account_version=balance[1])
            )
        effects = period_effects(
            counted_kind=TransactionKindCode.EARN,
            participant_postings=[(person.account_id, score.points)] if score.points else [],
            subject_account_id=person.account_id,
            service_minutes=score.service_minutes,
            activity_count=activity_count_change(activity_id, bool(legs), score.service_minutes, reversal=False),
        )
        running.add(score.business_date, effects)
        if effects:
            touched_totals.update((person.account_id, period, starts_on) for period, starts_on in period_starts(score.business_date))
        head = chains[org.chain_id]
        content = entry_content(entry, request_digest=entry.request_digest(), actor_id=actor.id, recorded_at=now)
        link = chain.TransactionLink(
            chain_id=head.org_id, seq=head.seq + 1, prev_hash=head.head_hash, reverses=None, postings=postings, **content
        )
        link_hash = chain.link_hash(link)
        transaction_rows.append(
            dict(id=transaction_id, chain_id=link.chain_id, seq=link.seq, prev_hash=link.prev_hash, hash=link_hash, reverses_id=None, **content)
        )
        head.seq, head.head_hash, head.updated_at = link.seq, link_hash, now
        points += score.points
        minutes += score.service_minutes

    insert_rows(session, Activity.__table__, activity_rows)
    insert_rows(session, Transaction.__table__, transaction_rows)
    insert_rows(session, Posting.__table__, posting_rows)
    _store_totals(session, running, touched_totals, accounts)
    _store_balances(session, accounts, balances)
    session.flush()  # the chain heads
    return points, minutes


def _check_lines(lines: Sequence[HistoryLine], now: dt.datetime) -> None:
    references = set()
    for index, line in enumerate(lines):
        with on_line("lines", index):
            if not isinstance(line.reference, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(line.idempotency_key):
                raise InvalidInput("must be 1 to 121 letters, digits and . _ : / @ + = -", field="reference")
            if line.reference in references:
                raise InvalidInput("appears twice in the batch", field="reference")
            references.add(line.reference)
            if type(line.org_id) is not int:
                raise InvalidInput("must be an org's id", field="org_id")
            check_service(line.service, now)


def _orgs(session: Session, org_ids: set[int]) -> dict[int, OrgNode]:
    orgs = {org.id: org for org in session.execute(select(OrgNode).where(OrgNode.id.in_(org_ids))).scalars()}
    for org_id in org_ids - orgs.keys():
        raise NotFound(f"org {org_id} does not exist", field="org_id")
    for org in orgs.values():
        if org.kind == OrgKind.DISTRICT:
            raise InvalidInput("service is recorded in a street, community or grid", field="org_id")
    return orgs


def _already_imported(session: Session, actor: AppUser, lines: Sequence[HistoryLine], digests: list[str]) -> set[int]:
    """Return the lines an earlier import brought in; refuse a reference reused for other content.

    A reference names one activity of the old system wherever it was recorded: one imported
    before in another org is the same reference with other content (the org is in the digest).
    """
    earlier = {
        key: digest
        for key, digest in session.execute(
            select(Activity.idempotency_key, Activity.request_digest).where(
                Activity.recorded_by_id == actor.id,
                among(session, Activity.idempotency_key, [line.idempotency_key for line in lines]),
            )
        )
    }
    done = set()
    for index, line in enumerate(lines):
        digest = earlier.get(line.idempotency_key)
        if digest is None:
            continue
        if digest != digests[index]:
            raise IdempotencyConflict(
                "this reference was imported before with other content", field=f"lines[{index}].reference"
            )
        done.add(index)
    return done


def _people(session: Session, participant_ids: set[int]) -> dict[int, _Person]:
    rows = session.execute(
        select(Participant.id, Account.id, OrgNode.path, Participant.kind, PartyMember.participant_id.is_not(None))
        .join(Account, Account.participant_id == Participant.id)
        .join(OrgNode, OrgNode.id == Participant.org_id)
        .outerjoin(PartyMember, PartyMember.participant_id == Participant.id)
        .where(among(session, Participant.id, participant_ids))
    )
    return {participant_id: _Person(*rest) for participant_id, *rest in rows}


def _check_place(item: PendingActivity, orgs: dict[int, OrgNode], people: dict[int, _Person]) -> None:
    """Refuse service by someone unknown, or recorded outside the community (or books) the person belongs to."""
    person = people.get(item.service.participant_id)
    if person is None:
        raise NotFound(f"participant {item.service.participant_id} does not exist", field="participant_id")
    org = orgs[item.org_id]
    lineage = path_ids(org.path)
    scope = "/" + "".join(f"{node}/" for node in lineage[: lineage.index(org.chain_id) + 1])
    if not person.path.startswith(scope):
        raise InvalidInput(
            f"participant {item.service.participant_id} does not belong where the service was recorded",
            field="participant_id",
        )


def _check_no_overlap(session: Session, pending: Sequence[PendingActivity], orgs: dict[int, OrgNode], lines: str) -> None:
    """Refuse a line that overlaps the person's other service, or takes them past 24 hours on one day."""
    services = [item.service for item in pending]
    # An activity lasts at most a day, so one that overlaps, or shares a day with, a line starts at most a day before it.
    earliest = min(service.started_at for service in services) - dt.timedelta(minutes=DAY_MINUTES)
    latest = max(service.ended_at for service in services) + dt.timedelta(minutes=DAY_MINUTES)
    existing = session.execute(
        active_activities({service.participant_id for service in services})
        .with_only_columns(Activity.participant_id, Activity.started_at, Activity.ended_at, Activity.id)
        .where(Activity.started_at >= earliest, Activity.started_at < latest)
    ).all()
    zones = {item.service.participant_id: zoneinfo.ZoneInfo(orgs[item.org_id].time_zone) for item in pending}
    by_person: dict[int, list[tuple[dt.datetime, dt.datetime, str, int | None]]] = {}
    for participant_id, started_at, ended_at, activity_id in existing:
        by_person.setdefault(participant_id, []).append((started_at, ended_at, f"activity {activity_id}", None))
    for item in pending:
        service = item.service
        by_person.setdefault(service.participant_id, []).append(
            (service.started_at, service.ended_at, f"{lines}[{item.line}]", item.line)
        )
    for participant_id, intervals in by_person.items():
        intervals.sort(key=lambda interval: interval[:2])
        day_minutes: dict[dt.date, int] = {}
        #: The last line of each day, which a day over 24 hours is refused on, wherever in the day the rest lies.
        last_line_of_day: dict[dt.date, int] = {}
        latest_end, latest_name, latest_line = None, None, None
        for started_at, ended_at, name, line in intervals:
            if latest_end is not None and started_at < latest_end and (line is not None or latest_line is not None):
                refused, other = (line, latest_name) if line is not None else (latest_line, name)
                raise InvalidInput(f"overlaps {other} of the same person", field=f"{lines}[{refused}].started_at")
            if latest_end is None or ended_at > latest_end:
                latest_end, latest_name, latest_line = ended_at, name, line
            day = started_at.astimezone(zones[participant_id]).date()
            day_minutes[day] = day_minutes.get(day, 0) + (ended_at - started_at) // dt.timedelta(minutes=1)
            if line is not None:
                last_line_of_day[day] = line
        for day, line in last_line_of_day.items():
            if day_minutes[day] > DAY_MINUTES:
                raise InvalidInput(
                    f"would make more than 24 hours of service on {day.isoformat()}", field=f"{lines}[{line}].ended_at"
                )


def _running_totals(
    session: Session, people: dict[int, _Person], pending: Sequence[PendingActivity], orgs: dict[int, OrgNode]
) -> RunningTotals:
    """Return the batch's people's day, month and year totals as the ledger holds them now, to count on from."""
    days = [local_date(item.service.started_at, orgs[item.org_id]) for item in pending]
    account_ids = {people[item.service.participant_id].account_id for item in pending}
    first, last = min(days), max(days)
    running = RunningTotals()
    columns = [getattr(PeriodTotal, name) for name in PERIOD_TOTAL_COLUMNS]
    rows = session.execute(
        select(PeriodTotal.account_id, PeriodTotal.period, PeriodTotal.starts_on, *columns).where(
            among(session, PeriodTotal.account_id, account_ids),
            (PeriodTotal.period == PeriodKind.DAY) & PeriodTotal.starts_on.between(first, last)
            | (PeriodTotal.period != PeriodKind.DAY)
            & PeriodTotal.starts_on.between(first.replace(month=1, day=1), last.replace(month=12, day=31)),
        )
    )
    for account_id, period, starts_on, *values in rows:
        running.totals[(account_id, period, starts_on)] = dict(zip(PERIOD_TOTAL_COLUMNS, values))
    return running


def _published_versions(session: Session, orgs: Iterable[OrgNode]) -> list[RuleSetVersion]:
    lineages = {node for org in orgs for node in path_ids(org.path)}
    return list(
        session.execute(
            select(RuleSetVersion).where(RuleSetVersion.org_id.in_(lineages), RuleSetVersion.status == RuleSetStatus.PUBLISHED)
        ).scalars()
    )


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """Reserve ``count`` new ids of ``table``, ascending, so that rows keep the order they were written in."""
    if session.get_bind().dialect.name == "postgresql":
        return sorted(
            session.execute(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                {"table": table.name, "count": count},
            ).scalars()
        )
    # SQLite: the write transaction's BEGIN IMMEDIATE holds the file lock, so nobody else takes these ids.
    highest = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(highest + 1, highest + 1 + count))


def _activity_row(item: PendingActivity, activity_id: int, actor: AppUser, now: dt.datetime) -> dict[str, Any]:
    return dict(
        id=activity_id,
        org_id=item.org_id,
        **item.service.activity_columns(),
        source=item.source,
        event_id=item.event_id,
        recorded_by_id=actor.id,
        recorded_at=now,
        idempotency_key=item.idempotency_key,
        request_digest=item.request_digest,
        corrects_id=None,
        correction_reason=None,
    )


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, in the table's column names): with COPY on PostgreSQL, as one executemany elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    # itemgetter of one column returns the value itself, not a row of one.
    values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    # COPY takes JSON columns as JSON text.
    json_positions = [position for position, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            values = values_of(row)
            if json_positions:
                values = list(values)
                for position in json_positions:
                    if values[position] is not None:
                        values[position] = orjson.dumps(values[position]).decode()
            copy.write_row(values)


def _store_totals(
    session: Session, running: RunningTotals, keys: set[tuple[int, str, dt.date]], accounts: dict[int, Account]
) -> None:
    """Write the batch's people's period totals as they now stand (the batch holds their accounts' locks)."""
    if not keys:
        return
    rows = [
        {
            "account_id": account_id,
            "period": period,
            "starts_on": starts_on,
            "org_id": accounts[account_id].org_id,
            **running.totals[(account_id, period, starts_on)],
        }
        for account_id, period, starts_on in sorted(keys)
    ]
    table = PeriodTotal.__table__
    if session.get_bind().dialect.name == "postgresql":
        # One statement, so the standings trigger fires once a batch (migration e7a9c1d3f5b6), not once a row.
        statement, parameters = postgresql.insert(table).from_select(list(rows[0]), select(_unnested(table, rows))), None
    else:
        statement, parameters = sqlite.insert(table), rows
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.account_id, table.c.period, table.c.starts_on],
            set_={name: statement.excluded[name] for name in PERIOD_TOTAL_COLUMNS},
        ),
        parameters,
    )


def _store_balances(session: Session, accounts: dict[int, Account], balances: dict[int, list[int]]) -> None:
    """Write the batch's accounts' new balances and versions, and mark the loaded accounts with them.

    One statement on PostgreSQL; the ORM's flush wrote them row by row, about 200 ms for a batch of 1,000 people.
    """
    table = Account.__table__
    rows = [
        {"id": account_id, "balance": balance, "version": version}
        for account_id, (balance, version) in sorted(balances.items())
    ]
    if session.get_bind().dialect.name == "postgresql":
        new = _unnested(table, rows)
        session.execute(update(table).where(table.c.id == new.c.id).values(balance=new.c.balance, version=new.c.version))
    else:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("account_id"))
            .values(balance=bindparam("new_balance"), version=bindparam("new_version")),
            [{"account_id": row["id"], "new_balance": row["balance"], "new_version": row["version"]} for row in rows],
        )
    for row in rows:
        account = accounts[row["id"]]
        set_committed_value(account, "balance", row["balance"])
        set_committed_value(account, "version", row["version"])


def _unnested(table: Table, rows: list[dict[str, Any]]):
    """Return ``rows`` as a PostgreSQL set of rows: ``unnest`` over one array a column, typed as ``table``'s columns."""
    names = list(rows[0])
    arrays = [bindparam(name, [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type)) for name in names]
    return func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
