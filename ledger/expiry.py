"""Expiry (积分过期): taking away the points a rule set says have expired, through the ledger.

Which points expire is decided by the pure functions in :mod:`ledger.rewards`: points are
counted in lots (the net points earned on one day), and spending and expiry take the oldest
lots first, so points already spent are never expired. This module reads the lots and what
consumed them from the period totals the write path keeps (never the ledger itself), and
records one ``expire`` transaction per participant account with something due: participant →
the expiry account of the participant's org, in that org's books, dated the run's day.

The policy is the one of the rule set in force for the participant's org on the run's day;
where no rule set is published, nothing expires.

A run walks the participant accounts in id order, a batch at a time. The ``ledger expire``
command commits each batch on its own, so a district-wide run never holds locks for minutes.
A run is idempotent: once a day's expiry is recorded nothing more is due for that day, so
running again for the same day, or again after an interruption (which completes what the
interrupted run left), writes nothing twice. Each entry's idempotency key names the day, the
account and the account version its amount was computed from: a retry of the same computation
returns the first entry, while points that fall due again for the same day (a cancelled
redemption refunds points of an old lot) get an entry of their own.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import NotFound
from ledger.models import (
    Account,
    AccountKind,
    AppUser,
    OrgNode,
    Participant,
    PeriodKind,
    PeriodTotal,
    TransactionKindCode,
)
from ledger.points import transfer
from ledger.rewards import Lot, expiry_breakdown, lots_and_deductions, upcoming_expiries
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import Expiry, ExpiryPolicy
from ledger.transactions import lock_accounts, lock_chain, record_transaction, system_account

#: Participant accounts examined, and locked, in one database transaction.
BATCH_SIZE = 200

#: What an expire entry says in a participant's history.
EXPIRY_MEMO = "积分到期失效"


@dataclass(frozen=True)
class ExpiryRun:
    """What an expiry run did."""

    as_of: dt.date
    accounts_examined: int = 0
    accounts_expired: int = 0
    points_expired: int = 0

    def __add__(self, other: ExpiryRun) -> ExpiryRun:
        return ExpiryRun(
            self.as_of,
            self.accounts_examined + other.accounts_examined,
            self.accounts_expired + other.accounts_expired,
            self.points_expired + other.points_expired,
        )

    def describe(self) -> str:
        return (
            f"Expired {self.points_expired} points from {self.accounts_expired} of "
            f"{self.accounts_examined} accounts as of {self.as_of.isoformat()}."
        )


#: What one batch did, and the last account id it examined (``None`` when none are left).
BatchOutcome = tuple[ExpiryRun, int | None]


@dataclass(frozen=True)
class _Terms:
    """What an org's participants expire under, and where their expired points go."""

    rule_set_version_id: int | None
    policy: Expiry
    expiry_account_id: int


def _in_the_callers_transaction(work: Callable[[], BatchOutcome]) -> BatchOutcome:
    return work()


def expire_points(
    session: Session,
    *,
    actor: AppUser,
    as_of: dt.date,
    org: OrgNode | None = None,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    each_batch: Callable[[Callable[[], BatchOutcome]], BatchOutcome] = _in_the_callers_transaction,
) -> ExpiryRun:
    """Expire what is due by ``as_of`` in every participant account (in ``org``'s subtree, if given).

    ``each_batch`` runs the work of one batch of accounts and returns what it returns: by
    default inside the caller's database transaction; pass :func:`ledger.db.write_transaction`
    to commit each batch on its own.
    """
    terms: dict[int, _Terms] = {}
    run, after = ExpiryRun(as_of), 0
    while True:
        batch, last = each_batch(
            functools.partial(
                _expire_batch,
                session,
                actor=actor,
                as_of=as_of,
                org=org,
                after=after,
                limit=batch_size,
                terms=terms,
                now=now,
            )
        )
        run += batch
        if last is None:
            return run
        after = last


def expiring_soon(session: Session, account_id: int, *, today: dt.date) -> list[tuple[dt.date, int]]:
    """Return what a participant's points expire next and when, ``(expires_on, points)`` soonest first.

    Read under the rule set in force today; a later rule change may move the dates.
    """
    account = session.get(Account, account_id)
    if account is None or account.kind != AccountKind.PARTICIPANT:
        raise NotFound(f"participant account {account_id} does not exist", field="account_id")
    _, policy = _policy_in_force(session, account.participant.org, today)
    lots, consumed = _holdings(session, [account_id])[account_id]
    return upcoming_expiries(lots, consumed, policy, today)


def _expire_batch(
    session: Session,
    *,
    actor: AppUser,
    as_of: dt.date,
    org: OrgNode | None,
    after: int,
    limit: int,
    terms: dict[int, _Terms],
    now: dt.datetime | None,
) -> BatchOutcome:
    """Expire what is due in the next ``limit`` participant accounts after id ``after``."""
    query = (
        select(Account.id, Participant.org_id)
        .join(Participant, Participant.id == Account.participant_id)
        .where(Account.kind == AccountKind.PARTICIPANT, Account.id > after)
        .order_by(Account.id)
        .limit(limit)
    )
    if org is not None:
        query = query.join(OrgNode, OrgNode.id == Participant.org_id).where(OrgNode.path.startswith(org.path))
    rows = session.execute(query).all()
    if not rows:
        return ExpiryRun(as_of), None
    orgs = {org_id: session.get(OrgNode, org_id) for org_id in sorted({org_id for _, org_id in rows})}
    # Chains first, then accounts, as every writer does: while these locks are held no write can
    # change what the amounts below are computed from.
    for _, chain_org in sorted({node.chain_id: node for node in orgs.values()}.items()):
        lock_chain(session, chain_org)
    accounts = lock_accounts(session, [account_id for account_id, _ in rows])
    for org_id, node in orgs.items():
        if org_id not in terms:
            terms[org_id] = _terms_of(session, node, as_of)
    owners = {
        account_id: orgs[org_id]
        for account_id, org_id in rows
        if accounts[account_id].balance > 0 and terms[org_id].policy.policy != ExpiryPolicy.NEVER
    }
    run = ExpiryRun(as_of, accounts_examined=len(rows))
    for account_id, (lots, consumed) in _holdings(session, owners).items():
        owner_org = owners[account_id]
        org_terms = terms[owner_org.id]
        breakdown = expiry_breakdown(lots, consumed, org_terms.policy, as_of)
        if not breakdown["expired"]:
            continue
        record_transaction(
            session,
            actor=actor,
            org=owner_org,
            kind=TransactionKindCode.EXPIRE,
            legs=transfer(account_id, org_terms.expiry_account_id, breakdown["expired"]),
            business_date=as_of,
            idempotency_key=f"expire:{as_of.isoformat()}:{account_id}:v{accounts[account_id].version}",
            memo=EXPIRY_MEMO,
            breakdown=breakdown,
            rule_set_version_id=org_terms.rule_set_version_id,
            now=now,
        )
        run += ExpiryRun(as_of, accounts_expired=1, points_expired=breakdown["expired"])
    return run, (rows[-1][0] if len(rows) == limit else None)


def _terms_of(session: Session, org: OrgNode, day: dt.date) -> _Terms:
    version_id, policy = _policy_in_force(session, org, day)
    return _Terms(version_id, policy, system_account(session, org, AccountKind.EXPIRY).id)


def _policy_in_force(session: Session, org: OrgNode, day: dt.date) -> tuple[int | None, Expiry]:
    """Return the rule-set version in force for ``org`` on ``day`` and its expiry policy.

    Where no rule set is published, points never expire: taking points away needs a rule.
    """
    try:
        version = version_in_force(session, org, day)
    except NotFound:
        return None, Expiry()
    return version.id, rules_of(version).expiry


def _holdings(session: Session, account_ids: Iterable[int]) -> dict[int, tuple[list[Lot], int]]:
    """Return each account's lots, oldest first, and the points consumed from them so far.

    Lots are the days with positive net points earned; consumed is every point spent or
    expired (from the year totals) plus what the negative days took.
    """
    account_ids = sorted(account_ids)
    days: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
    consumed: dict[int, int] = defaultdict(int)
    totals = session.execute(
        select(
            PeriodTotal.account_id,
            PeriodTotal.period,
            PeriodTotal.starts_on,
            PeriodTotal.points_earned,
            PeriodTotal.points_spent,
            PeriodTotal.points_expired,
        ).where(
            PeriodTotal.account_id.in_(account_ids),
            (PeriodTotal.period == PeriodKind.YEAR)
            | ((PeriodTotal.period == PeriodKind.DAY) & (PeriodTotal.points_earned != 0)),
        )
    )
    for account_id, period, starts_on, earned, spent, expired in totals:
        if period == PeriodKind.DAY:
            days[account_id].append((starts_on, earned))
        else:
            consumed[account_id] += spent + expired
    holdings = {}
    for account_id in account_ids:
        lots, deducted = lots_and_deductions(days[account_id])
        holdings[account_id] = (lots, consumed[account_id] + deducted)
    return holdings
