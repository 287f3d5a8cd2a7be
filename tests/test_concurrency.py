"""Many writers at once: no overdraft, no lost update, no deadlock surfacing as an error.

These run on both databases; PostgreSQL is the one with real parallel writers (row locks),
SQLite serialises them on the file lock with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from ledger.db import db, write_transaction
from ledger.errors import InsufficientBalance
from ledger.transactions import account_balance
from ledger.verify import verify_ledger
from tests.helpers import run_at_once, spend


def spender(*, actor_id, org_id, account_id, amount, attempts, name):
    def work():
        for attempt in range(attempts):
            key = f"{name}-{attempt}"
            try:
                write_transaction(
                    lambda: spend(db.session, actor_id=actor_id, org_id=org_id, account_id=account_id, amount=amount, key=key)
                )
                yield "spent"
            except InsufficientBalance:
                yield "refused"

    return work


def test_sixteen_spenders_racing_for_one_balance_take_exactly_what_it_allowed(
    app, session, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 100)
    workers = [
        spender(actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=7, attempts=1, name=f"s{n}")
        for n in range(16)
    ]
    outcomes = run_at_once(app, workers)
    assert outcomes == Counter(spent=14, refused=2)  # 14 × 7 = 98 of the 100 points
    assert account_balance(session, volunteer_account).balance == 2
    assert verify_ledger(session).ok


def test_spenders_and_creditors_at_once_never_overdraw_and_the_ledger_verifies(
    app, session, street, actor_id, volunteer_account, issue_points
):
    issue_points(volunteer_account, 50)

    def creditor(name: str, org_id: int):
        def work():
            for attempt in range(8):
                issue_points(volunteer_account, 10, org_id=org_id, key=f"{name}-{attempt}")
                yield "credited"

        return work

    workers = [
        spender(actor_id=actor_id, org_id=street.community, account_id=volunteer_account, amount=9, attempts=8, name=f"s{n}")
        for n in range(16)
    ]
    # Credits come from both communities' books, so two chains write to one account at once.
    workers += [creditor(f"c{n}", street.community if n % 2 else street.other_community) for n in range(4)]
    outcomes = run_at_once(app, workers)

    assert set(outcomes) <= {"spent", "refused", "credited"}, outcomes
    assert outcomes["credited"] == 32 and outcomes["spent"] + outcomes["refused"] == 128
    balance = account_balance(session, volunteer_account)
    assert balance.balance == 50 + 32 * 10 - 9 * outcomes["spent"] >= 0
    assert balance.version == 1 + 32 + outcomes["spent"]
    report = verify_ledger(session)
    assert report.ok, report.problems


def test_many_first_uses_of_one_username_at_once_make_one_user(app, session):
    from ledger.models import AppUser
    from ledger.users import ensure_user

    def first_use():
        yield write_transaction(lambda: ensure_user(db.session, "night-shift", "夜班").id)

    outcomes = run_at_once(app, [first_use] * 8)
    assert len(outcomes) == 1 and sum(outcomes.values()) == 8, outcomes
    assert session.scalar(select(func.count()).select_from(AppUser).where(AppUser.username == "night-shift")) == 1
