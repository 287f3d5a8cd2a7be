"""The database itself refuses to change ledger rows; the ORM refuses earlier."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from ledger.errors import AppendOnlyViolation
from ledger.models import Account, Posting, Transaction
from tests.helpers import reverse, run_raw

RAW_CHANGES = [
    "UPDATE ledger_transaction SET memo = 'edited'",
    "UPDATE ledger_transaction SET business_date = business_date",
    "DELETE FROM ledger_transaction",
    "UPDATE posting SET amount = amount + 1",
    "DELETE FROM posting",
]


@pytest.fixture
def one_transaction(volunteer_account, issue_points) -> int:
    return issue_points(volunteer_account, 30)


@pytest.mark.parametrize("statement", RAW_CHANGES)
def test_raw_sql_cannot_update_or_delete_ledger_rows(app, session, one_transaction, statement):
    with pytest.raises(DBAPIError) as refused:
        run_raw(app, statement)
    assert "append-only" in str(refused.value.orig)
    assert session.get(Transaction, one_transaction).memo is None
    assert sum(p.amount for p in session.get(Transaction, one_transaction).postings) == 0


@pytest.mark.postgresql_only  # SQLite has no TRUNCATE; its DELETE trigger covers "DELETE FROM table"
@pytest.mark.parametrize("table", ["ledger_transaction", "posting"])
def test_raw_sql_cannot_truncate_ledger_tables(app, one_transaction, table):
    with pytest.raises(DBAPIError) as refused:
        run_raw(app, f"TRUNCATE {table} CASCADE")
    assert "append-only" in str(refused.value.orig)


def test_changing_a_transaction_through_the_orm_is_refused_before_the_database_sees_it(session, one_transaction):
    transaction = session.get(Transaction, one_transaction)
    transaction.memo = "edited"
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()


def test_deleting_a_posting_through_the_orm_is_refused(session, one_transaction):
    session.delete(session.get(Transaction, one_transaction).postings[0])
    with pytest.raises(AppendOnlyViolation):
        session.flush()
    session.rollback()


@pytest.mark.parametrize(
    "statement",
    [update(Posting).values(amount=1), delete(Transaction), update(Transaction.__table__).values(memo="x")],
    ids=["orm-update", "orm-delete", "core-update"],
)
def test_bulk_statements_on_ledger_tables_are_refused_by_the_session(session, one_transaction, statement):
    with pytest.raises(AppendOnlyViolation):
        session.execute(statement)
    session.rollback()


LINK_COLUMNS = (
    "org_id", "chain_id", "seq", "kind", "business_date", "recorded_at", "recorded_by_id",
    "idempotency_key", "request_digest", "reverses_id", "prev_hash", "hash",
)


def insert_copy(app, source_id: int, **replacements: str) -> None:
    """Insert a raw copy of a transaction row, some columns replaced by SQL expressions."""
    values = ", ".join(replacements.get(column, column) for column in LINK_COLUMNS)
    run_raw(
        app,
        f"INSERT INTO ledger_transaction ({', '.join(LINK_COLUMNS)}) "
        f"SELECT {values} FROM ledger_transaction WHERE id = {source_id}",
    )


def test_the_database_refuses_a_link_that_does_not_follow_its_chain(app, one_transaction):
    with pytest.raises(DBAPIError) as refused:
        # prev_hash copied from link 1 names the genesis hash, not link 1's hash.
        insert_copy(app, one_transaction, seq="seq + 1", idempotency_key="'forged'", hash=f"'{'f' * 64}'")
    assert "link" in str(refused.value.orig)


def test_the_database_refuses_to_reverse_a_reversal(app, session, write, actor_id, one_transaction):
    reversal = write(lambda: reverse(session, actor_id=actor_id, transaction_id=one_transaction, key="undo")).transaction
    with pytest.raises(DBAPIError) as refused:
        insert_copy(
            app,
            reversal.id,
            seq="seq + 1",
            idempotency_key="'undo-undo'",
            reverses_id=str(reversal.id),
            prev_hash="hash",
            hash=f"'{'e' * 64}'",
        )
    assert "reversal cannot itself be reversed" in str(refused.value.orig)


@pytest.mark.postgresql_only  # SQLite has no deferred triggers; `ledger verify` checks zero-sum there
def test_postgresql_refuses_to_commit_unbalanced_postings(app, session, one_transaction):
    original = session.get(Transaction, one_transaction)
    touched = [posting.account_id for posting in original.postings]
    account_id = session.scalar(select(Account.id).where(Account.id.not_in(touched)).limit(1))
    statement = (
        "INSERT INTO posting (transaction_id, account_id, amount, balance_after, account_version) "
        f"VALUES ({original.id}, {account_id}, 1, 0, 999)"
    )
    with pytest.raises(DBAPIError) as refused:
        run_raw(app, statement)
    assert "unbalanced" in str(refused.value.orig)
