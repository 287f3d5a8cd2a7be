"""Small helpers shared by the ledger tests: an earn, a spend, a reversal, a fingerprint of the ledger."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Callable

from sqlalchemy import func, select, text

from ledger.db import db
from ledger.models import APPEND_ONLY_TABLES, Account, AccountKind, AppUser, ChainHead, OrgNode, Posting, Transaction
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


_earn_keys = itertools.count(1)


def earn(session, actor_id, org_id, account_id, amount, business_date, *, key=None, service_minutes=0):
    """Issue points dated ``business_date`` to an account from the org's issuance account (an earn).

    With ``service_minutes`` the entry also records that much service for the account.
    """
    org = session.get(OrgNode, org_id)
    return record_transaction(
        session,
        actor=session.get(AppUser, actor_id),
        org=org,
        kind="earn",
        legs=transfer(system_account(session, org, AccountKind.ISSUANCE).id, account_id, amount),
        business_date=business_date,
        idempotency_key=key or f"earn-{next(_earn_keys)}",
        service_minutes=service_minutes,
        subject_account_id=account_id if service_minutes else None,
    ).transaction


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


def participant_of(session, account_id) -> int:
    return session.get(Account, account_id).participant_id


def run_raw(app, statement: str) -> None:
    """Execute SQL on a connection of its own, outside the ORM, and commit it."""
    db.session.rollback()  # release the test's own read locks, which TRUNCATE would wait for
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text(statement))
        connection.commit()


def tamper(app, *statements: str) -> None:
    """Drop the ledger's triggers, run raw SQL, and put the triggers back, as an intruder might."""
    db.session.rollback()  # release the test's own read locks, which DROP TRIGGER would wait for
    with app.app_context(), db.engine.begin() as connection, triggers_dropped(connection, APPEND_ONLY_TABLES):
        for statement in statements:
            connection.execute(text(statement))


def run_at_once(app, workers: list[Callable[[], str]]) -> Counter:
    """Start every worker in its own thread and app context at the same moment; count outcomes."""
    barrier = threading.Barrier(len(workers))
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def run(work):
        with app.app_context():
            barrier.wait()
            try:
                for outcome in work():
                    with lock:
                        outcomes[outcome] += 1
            except Exception as error:  # noqa: BLE001 - the test asserts there are none
                with lock:
                    outcomes[f"error: {error!r}"] += 1
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
