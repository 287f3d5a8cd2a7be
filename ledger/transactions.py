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
from typing import Any, Iterable, Sequence

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger import chain
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
    Posting,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.points import MAX_BALANCE, Leg, balanced_legs, mirrored

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
    now: dt.datetime | None = None,
) -> Recorded:
    """Record one balanced transaction in ``org``'s books, or return the one this key recorded."""
    if kind == TransactionKindCode.REVERSE:
        raise InvalidInput("use reverse_transaction to reverse a transaction", field="kind")
    return _record(
        session,
        actor=actor,
        org=org,
        kind=_check_kind(kind),
        legs=balanced_legs(legs),
        business_date=business_date,
        idempotency_key=idempotency_key,
        memo=memo,
        breakdown=breakdown,
        activity_id=activity_id,
        rule_set_version_id=rule_set_version_id,
        reverses=None,
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
        org=original.org,
        kind=TransactionKindCode.REVERSE,
        legs=mirrored(Leg(p.account_id, p.amount) for p in original.postings),
        business_date=original.business_date,
        idempotency_key=idempotency_key,
        memo=reason.strip(),
        breakdown=None,
        activity_id=original.activity_id,
        rule_set_version_id=None,
        reverses=original,
        now=now,
    )


def _record(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    kind: str,
    legs: tuple[Leg, ...],
    business_date: dt.date,
    idempotency_key: str,
    memo: str | None,
    breakdown: Any,
    activity_id: int | None,
    rule_set_version_id: int | None,
    reverses: Transaction | None,
    now: dt.datetime | None,
) -> Recorded:
    _check_idempotency_key(idempotency_key)
    _check_inputs(business_date, memo, breakdown, activity_id, rule_set_version_id)
    request_digest = chain.digest(
        {
            "org": org.id,
            "kind": kind,
            "business_date": business_date.isoformat(),
            "legs": [[leg.account_id, leg.amount] for leg in legs],
            "memo": memo,
            "breakdown": breakdown,
            "activity": activity_id,
            "rule_set_version": rule_set_version_id,
            "reverses": reverses.id if reverses is not None else None,
        }
    )

    head = session.execute(
        select(ChainHead)
        .where(ChainHead.org_id == org.chain_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()

    earlier = session.execute(
        select(Transaction).where(
            Transaction.org_id == org.id,
            Transaction.recorded_by_id == actor.id,
            Transaction.idempotency_key == idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.request_digest != request_digest:
            raise IdempotencyConflict(
                "this idempotency key was already used for a different request", field="idempotency_key"
            )
        return Recorded(earlier, replayed=True)

    if reverses is not None:
        already = session.execute(
            select(Transaction.id).where(Transaction.reverses_id == reverses.id)
        ).scalar_one_or_none()
        if already is not None:
            raise AlreadyReversed(
                f"transaction {reverses.id} was already reversed by transaction {already}",
                field="transaction_id",
            )

    after = _apply_to_balances(session, org, legs, reversing=reverses is not None)

    content = dict(
        org_id=org.id,
        kind=kind,
        business_date=business_date,
        recorded_at=now or utc_now(),
        recorded_by_id=actor.id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        activity_id=activity_id,
        rule_set_version_id=rule_set_version_id,
        breakdown=breakdown,
        memo=memo,
    )
    postings = [chain.PostingLink(leg.account_id, leg.amount, *after[leg.account_id]) for leg in legs]
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


def _apply_to_balances(
    session: Session, org: OrgNode, legs: Sequence[Leg], *, reversing: bool
) -> dict[int, tuple[int, int]]:
    """Add each leg to its account; return ``{account_id: (balance_after, version)}``."""
    ids = [leg.account_id for leg in legs]  # ascending: balanced_legs sorts them
    accounts = {
        account.id: account
        for account in session.execute(
            select(Account)
            .where(Account.id.in_(ids))
            .order_by(Account.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    }
    for index, leg in enumerate(legs):
        account = accounts.get(leg.account_id)
        field = f"legs[{index}].account_id"
        if account is None:
            raise NotFound(f"account {leg.account_id} does not exist", field=field)
        if account.kind != AccountKind.PARTICIPANT and account.org_id != org.id:
            raise InvalidInput(
                f"system account {account.id} belongs to another org; a transaction uses its own org's",
                field=field,
            )
        if account.kind == AccountKind.PARTICIPANT and account.balance + leg.amount < 0:
            what = "reversing this transaction" if reversing else "this transaction"
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

    delta = case({leg.account_id: leg.amount for leg in legs}, value=Account.id)
    rows = session.execute(
        update(Account)
        .where(Account.id.in_(ids))
        .values(balance=Account.balance + delta, version=Account.version + 1)
        .returning(Account.id, Account.balance, Account.version)
        .execution_options(synchronize_session=False)
    ).all()
    for account_id, balance, version in rows:
        set_committed_value(accounts[account_id], "balance", balance)
        set_committed_value(accounts[account_id], "version", version)
    return {account_id: (balance, version) for account_id, balance, version in rows}


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
