"""The one write path of the ledger: record a transaction, reverse one, read balances.

Every function here takes the SQLAlchemy session and the acting user, does its work, and
flushes; the caller commits once (see :func:`ledger.db.write_transaction`). Nothing else in
the code base writes ``ledger_transaction``, ``posting``, account balances or chain heads.

How one transaction is written, inside the caller's database transaction:

1. Lock the chain head of the transaction's community (``SELECT … FOR UPDATE``; on SQLite
   the ``BEGIN IMMEDIATE`` of the write transaction already holds the file lock). Every
   writer of a community queues here, so what follows sees every committed write.
2. Look the idempotency key up. The same key with the same content returns the first
   transaction and writes nothing; with different content it is an
   :class:`~ledger.errors.IdempotencyConflict`.
3. Lock the accounts in ascending id order and check that no participant account would go
   below zero. Refusals happen here, before anything is written, so a refused call leaves
   the database transaction exactly as it found it.
4. Add each amount to its balance in one relative ``UPDATE … RETURNING`` (the database's own
   check constraint stands behind step 3), which also yields each posting's balance-after
   and account version.
5. Hash the transaction with its postings onto the chain, insert it, and move the head.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import case, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger import chain
from ledger.db import among
from ledger.errors import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    NotFound,
    NotReversible,
)
from ledger.models import (
    Account,
    AccountKind,
    AppUser,
    ChainHead,
    OrgNode,
    PeriodKind,
    PeriodTotal,
    Posting,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.points import MAX_BALANCE, Leg, balanced_legs, mirrored

#: Verified service one transaction may record: a full day.
MAX_SERVICE_MINUTES = 24 * 60
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}")
MAX_MEMO_LENGTH = 500


@dataclass(frozen=True)
class Recorded:
    """The outcome of a write: the transaction, and whether an earlier call had written it."""

    transaction: Transaction
    replayed: bool


@dataclass(frozen=True)
class Balance:
    account_id: int
    balance: int
    #: Number of postings the account has had.
    version: int


def record_transaction(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    kind: str,
    legs: Iterable[Leg],
    business_date: dt.date,
    idempotency_key: str,
    memo: str | None = None,
    breakdown: Any = None,
    activity_id: int | None = None,
    rule_set_version_id: int | None = None,
    service_minutes: int = 0,
    subject_account_id: int | None = None,
    now: dt.datetime | None = None,
) -> Recorded:
    """Record one balanced transaction in ``org``'s books, or return the one this key recorded.

    ``service_minutes`` and ``subject_account_id`` record verified service time for the
    participant account whose service it was. A transaction that scores an activity may have
    no legs at all when the activity earned no points (capped, or too short): it still
    records the service time, if any, and the breakdown that says why.
    """
    if kind == TransactionKindCode.REVERSE:
        raise InvalidInput("use reverse_transaction to reverse a transaction", field="kind")
    legs = tuple(legs)
    if type(service_minutes) is not int or not 0 <= service_minutes <= MAX_SERVICE_MINUTES:
        raise InvalidInput(f"must be whole minutes from 0 to {MAX_SERVICE_MINUTES}", field="service_minutes")
    return _record(
        session,
        actor=actor,
        entry=Entry(
            org=org,
            kind=_check_kind(kind),
            legs=balanced_legs(legs) if legs or not (service_minutes or activity_id) else (),
            business_date=business_date,
            idempotency_key=idempotency_key,
            memo=memo,
            breakdown=breakdown,
            activity_id=activity_id,
            rule_set_version_id=rule_set_version_id,
            service_minutes=service_minutes,
            subject_account_id=subject_account_id,
        ),
        now=now,
    )


def reverse_transaction(
    session: Session,
    *,
    actor: AppUser,
    transaction_id: int,
    idempotency_key: str,
    reason: str,
    now: dt.datetime | None = None,
) -> Recorded:
    """Undo a transaction with one that mirrors its postings and points back to it.

    The reversal belongs to the original's org, chain and business date, so period totals
    move in the period the original counted in. A transaction is reversed at most once; a
    reversal is never reversed (record the corrected entry instead); a reversal that would
    take a participant below zero (the points were already spent) is refused.
    """
    original = session.get(Transaction, transaction_id)
    if original is None:
        raise NotFound(f"transaction {transaction_id} does not exist", field="transaction_id")
    if original.kind == TransactionKindCode.REVERSE:
        raise NotReversible(
            f"transaction {transaction_id} is itself a reversal; record a new entry instead",
            field="transaction_id",
        )
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a reversal needs a reason", field="reason")
    return _record(
        session,
        actor=actor,
        entry=Entry(
            org=original.org,
            kind=TransactionKindCode.REVERSE,
            legs=mirrored(Leg(p.account_id, p.amount) for p in original.postings) if original.postings else (),
            business_date=original.business_date,
            idempotency_key=idempotency_key,
            memo=reason.strip(),
            breakdown=None,
            activity_id=original.activity_id,
            rule_set_version_id=None,
            service_minutes=-original.service_minutes,
            subject_account_id=original.subject_account_id,
            reverses=original,
        ),
        now=now,
    )


@dataclass(frozen=True)
class Entry:
    """What a transaction will say, checked and ready to write."""

    org: OrgNode
    kind: str
    legs: tuple[Leg, ...]
    business_date: dt.date
    idempotency_key: str
    memo: str | None
    breakdown: Any
    activity_id: int | None
    rule_set_version_id: int | None
    service_minutes: int
    subject_account_id: int | None
    reverses: Transaction | None = None

    def request_digest(self) -> str:
        """Return the digest of what the caller asked for, to tell a retry from a new request."""
        return chain.digest(
            {
                "org": self.org.id,
                "kind": self.kind,
                "business_date": self.business_date.isoformat(),
                "legs": [[leg.account_id, leg.amount] for leg in self.legs],
                "memo": self.memo,
                "breakdown": self.breakdown,
                "activity": self.activity_id,
                "rule_set_version": self.rule_set_version_id,
                "service_minutes": self.service_minutes,
                "subject_account": self.subject_account_id,
                "reverses": self.reverses.id if self.reverses is not None else None,
            }
        )


def entry_content(entry: Entry, *, request_digest: str, actor_id: int, recorded_at: dt.datetime) -> dict[str, Any]:
    """Return the fields a transaction row stores under the names its link's hash covers them by."""
    return dict(
        org_id=entry.org.id,
        kind=entry.kind,
        business_date=entry.business_date,
        recorded_at=recorded_at,
        recorded_by_id=actor_id,
        idempotency_key=entry.idempotency_key,
        request_digest=request_digest,
        activity_id=entry.activity_id,
        rule_set_version_id=entry.rule_set_version_id,
        breakdown=entry.breakdown,
        memo=entry.memo,
        service_minutes=entry.service_minutes,
        subject_account_id=entry.subject_account_id,
    )


def lock_chain(session: Session, org: OrgNode) -> ChainHead:
    """Lock and return the head of ``org``'s chain: every writer of the community queues here.

    Callers that read before they write (cap windows, stock) take this lock first, so that
    what they read cannot change before their write commits.
    """
    return lock_chains(session, [org.chain_id])[org.chain_id]


def lock_chains(session: Session, chain_ids: Iterable[int]) -> dict[int, ChainHead]:
    """Lock several communities' chains, in ascending order like every writer that takes several locks."""
    return _lock_rows(session, ChainHead, ChainHead.org_id, chain_ids)


#: ``session.info`` key of the rows the session has locked in its current database transaction.
_LOCKS_HELD = "ledger_locks_held"


def _locks_held(session: Session) -> dict[tuple[type, int], Any]:
    """Return the rows locked so far in this database transaction, by model and id.

    A lock is held until the transaction ends, and a locked row changes only through this
    session, so a writer that needs it again (recording an activity takes its chain and account
    three times over) reuses the row instead of locking it again. Holding the rows here also
    keeps them in the session's identity map, which holds rows only weakly.
    """
    return session.info.setdefault(_LOCKS_HELD, {})


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction) -> None:
    # The database transaction's end, or a savepoint's (PostgreSQL releases what a rolled-back
    # savepoint locked); not the end of the inner transaction each flush runs in.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_LOCKS_HELD, None)


def _record(session: Session, *, actor: AppUser, entry: Entry, now: dt.datetime | None) -> Recorded:
    _check_idempotency_key(entry.idempotency_key)
    _check_inputs(entry.business_date, entry.memo, entry.breakdown, entry.activity_id, entry.rule_set_version_id)
    if (entry.service_minutes or entry.activity_id) and entry.subject_account_id is None:
        raise InvalidInput("service time and activities are recorded for a participant account", field="subject_account_id")
    request_digest = entry.request_digest()
    head = lock_chain(session, entry.org)

    earlier = session.execute(
        select(Transaction).where(
            Transaction.org_id == entry.org.id,
            Transaction.recorded_by_id == actor.id,
            Transaction.idempotency_key == entry.idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.request_digest != request_digest:
            raise IdempotencyConflict(
                "this idempotency key was already used for a different request", field="idempotency_key"
            )
        return Recorded(earlier, replayed=True)

    reverses = entry.reverses
    if reverses is not None:
        already = session.execute(
            select(Transaction.id).where(Transaction.reverses_id == reverses.id)
        ).scalar_one_or_none()
        if already is not None:
            raise AlreadyReversed(
                f"transaction {reverses.id} was already reversed by transaction {already}",
                field="transaction_id",
            )

    touched = _apply_to_balances(session, entry)
    _add_to_period_totals(session, entry, touched)

    content = entry_content(entry, request_digest=request_digest, actor_id=actor.id, recorded_at=now or utc_now())
    postings = [
        chain.PostingLink(leg.account_id, leg.amount, touched[leg.account_id].balance, touched[leg.account_id].version)
        for leg in entry.legs
    ]
    link = chain.TransactionLink(
        chain_id=head.org_id,
        seq=head.seq + 1,
        prev_hash=head.head_hash,
        reverses=None if reverses is None else (reverses.chain_id, reverses.seq),
        postings=postings,
        **content,
    )
    transaction = Transaction(
        chain_id=link.chain_id,
        seq=link.seq,
        prev_hash=link.prev_hash,
        reverses_id=None if reverses is None else reverses.id,
        hash=chain.link_hash(link),
        postings=[
            Posting(
                account_id=p.account_id,
                amount=p.amount,
                balance_after=p.balance_after,
                account_version=p.account_version,
            )
            for p in postings
        ],
        **content,
    )
    session.add(transaction)
    head.seq = link.seq
    head.head_hash = transaction.hash
    head.updated_at = transaction.recorded_at
    session.flush()
    return Recorded(transaction, replayed=False)


def lock_accounts(session: Session, account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock accounts in ascending id order (so writers never deadlock) and return them fresh."""
    return _lock_rows(session, Account, Account.id, account_ids)


def _lock_rows(session: Session, model: type, key, keys: Iterable[int]) -> dict[int, Any]:
    """Lock ``model``'s rows by ``key`` in ascending order, except those this transaction holds already; return them all."""
    locks = _locks_held(session)
    wanted = sorted(set(keys))
    missing = [value for value in wanted if (model, value) not in locks]
    if missing:
        for row in session.execute(
            select(model).where(among(session, key, missing)).order_by(key).with_for_update().execution_options(populate_existing=True)
        ).scalars():
            locks[model, getattr(row, key.key)] = row
    return {value: locks[model, value] for value in wanted if (model, value) in locks}


def _apply_to_balances(session: Session, entry: Entry) -> dict[int, Account]:
    """Add each leg to its account; return every account the entry touches, locked and current."""
    legs, subject = entry.legs, entry.subject_account_id
    accounts = lock_accounts(session, [leg.account_id for leg in legs] + ([subject] if subject is not None else []))
    if subject is not None and getattr(accounts.get(subject), "kind", None) != AccountKind.PARTICIPANT:
        raise InvalidInput("must be a participant account", field="subject_account_id")
    for index, leg in enumerate(legs):
        account = accounts.get(leg.account_id)
        field = f"legs[{index}].account_id"
        if account is None:
            raise NotFound(f"account {leg.account_id} does not exist", field=field)
        if account.kind != AccountKind.PARTICIPANT and account.org_id != entry.org.id:
            raise InvalidInput(
                f"system account {account.id} belongs to another org; a transaction uses its own org's",
                field=field,
            )
        if account.kind == AccountKind.PARTICIPANT and account.balance + leg.amount < 0:
            what = "reversing this transaction" if entry.reverses is not None else "this transaction"
            raise InsufficientBalance(
                f"{what} needs {-leg.amount} points from account {account.id}, "
                f"which has {account.balance}",
                field=field,
                account_id=account.id,
                balance=account.balance,
                needed=-leg.amount,
            )
        if abs(account.balance + leg.amount) > MAX_BALANCE:
            raise InvalidInput(f"account {account.id} would pass the largest balance, {MAX_BALANCE}", field=field)
    if not legs:
        return accounts

    delta = case({leg.account_id: leg.amount for leg in legs}, value=Account.id)
    rows = session.execute(
        update(Account)
        .where(Account.id.in_([leg.account_id for leg in legs]))
        .values(balance=Account.balance + delta, version=Account.version + 1)
        .returning(Account.id, Account.balance, Account.version)
        .execution_options(synchronize_session=False)
    ).all()
    for account_id, balance, version in rows:
        set_committed_value(accounts[account_id], "balance", balance)
        set_committed_value(accounts[account_id], "version", version)
    return accounts


#: The period-total column a kind's participant postings count in, and the sign they count with.
PERIOD_COLUMNS = {
    TransactionKindCode.OPENING_BALANCE: ("points_earned", 1),
    TransactionKindCode.EARN: ("points_earned", 1),
    TransactionKindCode.ADJUST: ("points_earned", 1),
    TransactionKindCode.PENALTY: ("points_earned", 1),
    TransactionKindCode.REDEEM: ("points_spent", -1),
    TransactionKindCode.EXPIRE: ("points_expired", -1),
}
PERIOD_TOTAL_COLUMNS = ("points_earned", "points_spent", "points_expired", "service_minutes", "activity_count")


def period_effects(
    *,
    counted_kind: str,
    participant_postings: Iterable[tuple[int, int]],
    subject_account_id: int | None,
    service_minutes: int,
    activity_count: int,
) -> dict[int, dict[str, int]]:
    """Return how one transaction changes each participant account's period totals.

    ``counted_kind`` is the kind whose column the points count in: for a reversal, the kind
    of the transaction it reverses, so that undoing a spend lowers what was spent.
    """
    effects: dict[int, dict[str, int]] = {}
    column, sign = PERIOD_COLUMNS[counted_kind]
    for account_id, amount in participant_postings:
        effects.setdefault(account_id, dict.fromkeys(PERIOD_TOTAL_COLUMNS, 0))[column] += sign * amount
    if subject_account_id is not None and (service_minutes or activity_count):
        totals = effects.setdefault(subject_account_id, dict.fromkeys(PERIOD_TOTAL_COLUMNS, 0))
        totals["service_minutes"] += service_minutes
        totals["activity_count"] += activity_count
    return effects


def activity_count_change(activity_id: int | None, has_postings: bool, service_minutes: int, *, reversal: bool) -> int:
    """Return how a transaction changes its subject's activity count.

    An activity counts when it earned points or service time; one that earned nothing (too
    short, say) is on record with its breakdown but does not count.
    """
    if activity_id is None or not (has_postings or service_minutes):
        return 0
    return -1 if reversal else 1


def period_starts(business_date: dt.date) -> tuple[tuple[str, dt.date], ...]:
    """Return the (period, first day) pairs a business date counts in: its day, month and year."""
    return (
        (PeriodKind.DAY, business_date),
        (PeriodKind.MONTH, business_date.replace(day=1)),
        (PeriodKind.YEAR, business_date.replace(month=1, day=1)),
    )


def _add_to_period_totals(session: Session, entry: Entry, accounts: dict[int, Account]) -> None:
    """Add the entry to its participants' day, month and year totals; ``accounts`` holds every account it touches, subject included."""
    reversed_kind = entry.reverses.kind if entry.reverses is not None else None
    effects = period_effects(
        counted_kind=reversed_kind or entry.kind,
        participant_postings=[
            (leg.account_id, leg.amount) for leg in entry.legs if accounts[leg.account_id].kind == AccountKind.PARTICIPANT
        ],
        subject_account_id=entry.subject_account_id,
        service_minutes=entry.service_minutes,
        activity_count=activity_count_change(
            entry.activity_id, bool(entry.legs), entry.service_minutes, reversal=entry.reverses is not None
        ),
    )
    if not effects:
        return
    rows = [
        {"account_id": account_id, "period": period, "starts_on": starts_on, "org_id": accounts[account_id].org_id, **changes}
        for account_id, changes in sorted(effects.items())
        for period, starts_on in period_starts(entry.business_date)
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(PeriodTotal).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[PeriodTotal.account_id, PeriodTotal.period, PeriodTotal.starts_on],
            set_={name: getattr(PeriodTotal, name) + statement.excluded[name] for name in PERIOD_TOTAL_COLUMNS},
        )
    )


def _check_kind(kind: str) -> str:
    try:
        return TransactionKindCode(kind).value
    except ValueError:
        known = ", ".join(k.value for k in TransactionKindCode if k is not TransactionKindCode.REVERSE)
        raise InvalidInput(f"unknown transaction kind {kind!r}; one of: {known}", field="kind") from None


def _check_idempotency_key(key: object) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise InvalidInput(
            "must be 1 to 128 characters of letters, digits and . _ : / @ + = -",
            field="idempotency_key",
        )


def _check_inputs(business_date, memo, breakdown, activity_id, rule_set_version_id) -> None:
    if not isinstance(business_date, dt.date) or isinstance(business_date, dt.datetime):
        raise InvalidInput("must be a date", field="business_date")
    if memo is not None:
        if not isinstance(memo, str) or len(memo) > MAX_MEMO_LENGTH:
            raise InvalidInput(f"must be text of at most {MAX_MEMO_LENGTH} characters", field="memo")
        chain.check_canonical_value(memo, "memo")
    for field, value in (("activity_id", activity_id), ("rule_set_version_id", rule_set_version_id)):
        if value is not None and (type(value) is not int or value <= 0):
            raise InvalidInput("must be a positive integer id", field=field)
    chain.check_canonical_value(breakdown, "breakdown")


def account_balance(session: Session, account_id: int) -> Balance:
    """Return the cached balance of one account."""
    row = session.execute(
        select(Account.id, Account.balance, Account.version).where(Account.id == account_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"account {account_id} does not exist", field="account_id")
    return Balance(*row)


def participant_account(session: Session, participant_id: int) -> Account:
    """Return the points account of a participant."""
    account = session.execute(
        select(Account).where(Account.participant_id == participant_id)
    ).scalar_one_or_none()
    if account is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant_id")
    return account


def system_account(session: Session, org: OrgNode, kind: AccountKind) -> Account:
    """Return one of ``org``'s system accounts (issuance, reward shelf, expiry, …)."""
    if kind == AccountKind.PARTICIPANT:
        raise InvalidInput("participant accounts are not system accounts", field="kind")
    return session.execute(
        select(Account).where(
            Account.org_id == org.id, Account.kind == kind, Account.participant_id.is_(None)
        )
    ).scalar_one()


def account_history(
    session: Session, account_id: int, *, before_version: int | None = None, limit: int = 50
) -> list[tuple[Posting, Transaction]]:
    """Return an account's postings with their transactions, newest first, a page at a time.

    Pages are keyed by account version, so a page is one index range scan however long the
    history, and new postings arriving between pages never shift what the next page holds.
    """
    if type(limit) is not int or not 1 <= limit <= 500:
        raise InvalidInput("must be between 1 and 500", field="limit")
    query = (
        select(Posting, Transaction)
        .join(Transaction, Posting.transaction_id == Transaction.id)
        .where(Posting.account_id == account_id)
        .order_by(Posting.account_version.desc())
        .limit(limit)
    )
    if before_version is not None:
        query = query.where(Posting.account_version < before_version)
    return [(posting, transaction) for posting, transaction in session.execute(query)]


@dataclass(frozen=True)
class HistoryLine:
    """One line of a participant's history: a transaction and what it did to their account."""

    transaction: Transaction
    #: Points the transaction moved on the account (0 for an activity that earned none).
    amount: int
    #: The account's balance after it, when it moved points.
    balance_after: int | None


def concerns_account(account_id: int):
    """Return the condition "the transaction moves this account's points or records its service"."""
    return (Transaction.subject_account_id == account_id) | Transaction.id.in_(
        select(Posting.transaction_id).where(Posting.account_id == account_id)
    )


def participant_history(
    session: Session, account_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[HistoryLine]:
    """Return the transactions that concern an account, newest first: what moved its points,
    and the scored activities that earned nothing (their breakdowns say why)."""
    if type(limit) is not int or not 1 <= limit <= 500:
        raise InvalidInput("must be between 1 and 500", field="limit")
    query = select(Transaction).where(concerns_account(account_id)).order_by(Transaction.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Transaction.id < before_id)
    lines = []
    for transaction in session.execute(query).scalars():
        posting = next((p for p in transaction.postings if p.account_id == account_id), None)
        lines.append(
            HistoryLine(transaction, posting.amount if posting else 0, posting.balance_after if posting else None)
        )
    return lines
