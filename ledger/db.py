"""The database handle, its per-dialect set-up, and the one way writes are committed.

SQLite: WAL mode, foreign keys on, a busy timeout, and pysqlite's own transaction handling
switched off so that a write transaction starts with ``BEGIN IMMEDIATE`` (SQLAlchemy drops
``FOR UPDATE`` on SQLite, so the file lock is what serialises writers). Reads start a plain
deferred ``BEGIN`` and never block writers.

PostgreSQL: READ COMMITTED; writers serialise on row locks taken in a fixed order, and the
few transient failures that can still happen (deadlock, serialization failure) are retried by
:func:`write_transaction` a bounded number of times.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable, TypeVar

import orjson
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, MetaData, any_, bindparam, cast, event, func, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from ledger.errors import RetryLimitReached

#: Constraint names are stable across databases and migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

T = TypeVar("T")

#: Execution option that marks a connection as the start of a write transaction.
WRITE_OPTION = "ledger_write"

_TRANSIENT_PG_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_TRANSIENT_SQLITE_ERRORS = {"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED"}


def integer_sum(column):
    """Sum integers as an integer: PostgreSQL sums BIGINT as NUMERIC, which reaches Python as Decimal."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def among(session: Session, column, values: Iterable):
    """Return ``column IN values``; on PostgreSQL ``column = ANY(array)``, one parameter however many values.

    psycopg prepares a statement it has run five times, and PostgreSQL may then plan it once for
    any parameters: a list of 10,000 placeholders was then searched item by item for every row of
    a sequential scan (minutes a batch), where an array keeps to the index. One parameter also
    spares psycopg from splitting 10,000 placeholders out of the statement's text.
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def init_app(app) -> None:
    """Bind the database to ``app`` and set up each engine for its dialect."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    # The same values as json.loads, several times quicker: breakdowns, rule documents, evaluations' cells.
    options.setdefault("json_deserializer", orjson.loads)
    if uri.startswith("sqlite"):
        busy_seconds = app.config["LEDGER_SQLITE_BUSY_TIMEOUT_MS"] / 1000
        options.setdefault("connect_args", {})["timeout"] = busy_seconds
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                _prepare_sqlite(engine)


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def is_transient(error: DBAPIError) -> bool:
    """Tell whether ``error`` is a lost race that the same write may win when retried."""
    original = error.orig
    if getattr(original, "sqlstate", None) in _TRANSIENT_PG_STATES:
        return True
    return getattr(original, "sqlite_errorname", None) in _TRANSIENT_SQLITE_ERRORS


def write_transaction(work: Callable[[], T], *, retries: int | None = None) -> T:
    """Run ``work`` in one database write transaction, commit it, and return its result.

    This is the edge that owns the transaction: services flush, this commits once. A lost
    race (deadlock, serialization failure, SQLite busy) rolls back and runs ``work`` again
    from the start, up to ``retries`` times; any other error rolls back and propagates.
    """
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("write_transaction started with unflushed changes in the session")
    attempts = retries or current_app.config["LEDGER_WRITE_RETRIES"]
    for attempt in range(1, attempts + 1):
        session.rollback()  # end any read transaction so the write begins afresh
        try:
            session.connection(execution_options={WRITE_OPTION: True})
            result = work()
            session.commit()
            return result
        except DBAPIError as error:
            session.rollback()
            if not is_transient(error):
                raise
            if attempt == attempts:
                raise RetryLimitReached(
                    "the ledger is busy with other writers; try again in a moment"
                ) from error
            time.sleep(random.uniform(0, 0.005 * 2**attempt))
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


def schema_state() -> str:
    """Say whether the database can serve: ``unreachable``, ``pending`` (needs ``ledger db upgrade``) or ``current``."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            present = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        current_app.logger.warning("the database could not be reached: %s", str(error).splitlines()[0])
        return "unreachable"
    expected = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
    return "current" if present == expected else "pending"
