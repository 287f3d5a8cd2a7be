"""Small helpers shared by the ledger tests: a spend, a reversal, a fingerprint of the ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from ledger.models import AccountKind, AppUser, ChainHead, OrgNode, Posting, Transaction
from ledger.points import transfer
from ledger.transactions import record_transaction, reverse_transaction, system_account


def spend(session, *, actor_id, org_id, account_id, amount, key, **overrides):
    """Spend points from an account on the org's reward shelf (a redeem)."""
    org = session.get(OrgNode, org_id)
    shelf = system_account(session, org, AccountKind.REWARD_SHELF)
    arguments = dict(
        actor=session.get(AppUser, actor_id),
        org=org,
        kind="redeem",
        legs=transfer(account_id, shelf.id, amount),
        business_date=dt.date(2026, 11, 2),
        idempotency_key=key,
    )
    arguments.update(overrides)
    return record_transaction(session, **arguments)


def reverse(session, *, actor_id, transaction_id, key, reason="录入错误"):
    return reverse_transaction(
        session, actor=session.get(AppUser, actor_id), transaction_id=transaction_id, idempotency_key=key, reason=reason
    )


def ledger_counts(session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Transaction)),
        session.scalar(select(func.count()).select_from(Posting)),
        session.scalar(select(func.sum(ChainHead.seq))),
    )
