"""The write transaction: how it begins on SQLite, and what it retries."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from ledger.db import db, write_transaction
from ledger.errors import InvalidInput, RetryLimitReached
from ledger.models import OrgNode


class LostRace(Exception):
    """Stands in for a driver error with a PostgreSQL SQLSTATE."""

    def __init__(self, sqlstate: str):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def driver_error(sqlstate: str) -> OperationalError:
    return OperationalError("UPDATE account …", {}, LostRace(sqlstate))


@pytest.fixture
def statements(session):
    """Collect every SQL statement sent on the app's engine during the test."""
    sent: list[str] = []

    def collect(_connection, _cursor, statement, *_args):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", collect)
    yield sent
    event.remove(db.engine, "before_cursor_execute", collect)


@pytest.mark.sqlite_only  # BEGIN IMMEDIATE is how SQLite serialises writers; PostgreSQL locks rows
def test_sqlite_writes_begin_immediate_and_reads_begin_deferred(session, statements):
    write_transaction(lambda: session.execute(select(OrgNode.id)).all())
    session.execute(select(OrgNode.id)).all()
    begins = [statement for statement in statements if statement.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_lost_race_is_retried_until_the_work_succeeds(session, sqlstate):
    attempts = []

    def work():
        attempts.append(1)
        if len(attempts) < 3:
            raise driver_error(sqlstate)
        return "done"

    assert write_transaction(work) == "done" and len(attempts) == 3


def test_a_race_lost_on_every_attempt_ends_in_a_clear_busy_error(session):
    def work():
        raise driver_error("40P01")

    with pytest.raises(RetryLimitReached) as refused:
        write_transaction(work, retries=3)
    assert refused.value.code == "busy"


def test_other_database_errors_and_refusals_are_not_retried(session):
    attempts = []

    def failing(error):
        def work():
            attempts.append(1)
            raise error

        return work

    with pytest.raises(OperationalError):
        write_transaction(failing(driver_error("42P01")))
    with pytest.raises(InvalidInput):
        write_transaction(failing(InvalidInput("bad", field="x")))
    assert len(attempts) == 2
