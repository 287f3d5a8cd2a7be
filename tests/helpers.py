"""Small helpers shared by the ledger tests: a spend, a reversal, a fingerprint of the ledger."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from sqlalchemy import func, select, text

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


@contextmanager
def triggers_dropped(connection, tables):
    """Drop every trigger of the application on ``tables``, and put each back afterwards.

    What an intruder with the database owner's password could do to edit rows unseen.
    """
    if connection.dialect.name == "sqlite":
        found = connection.execute(
            text(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({_quoted(tables)})")
        ).all()
        drops = [f"DROP TRIGGER {name}" for name, _ in found]
    else:
        found = connection.execute(
            text(
                "SELECT t.tgname, pg_get_triggerdef(t.oid), c.relname FROM pg_trigger t "
                f"JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relname IN ({_quoted(tables)})"
            )
        ).all()
        drops = [f"DROP TRIGGER {name} ON {table}" for name, _, table in found]
    for statement in drops:
        connection.exec_driver_sql(statement)
    yield
    for row in found:
        connection.exec_driver_sql(row[1])


def _quoted(names) -> str:
    return ", ".join(f"'{name}'" for name in names)
