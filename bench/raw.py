"""The raw database side of each comparison: plain DB-API connections and the scratch tables they write.

The raw writes go to two tables of their own (``bench_raw_entry``, ``bench_raw_balance``), never
to the ledger's, so they cannot disturb what ``ledger verify`` checks afterwards.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import psycopg
from sqlalchemy.engine import make_url

from ledger.verify import STREAM_BATCH

SCRATCH_TABLES = {
    "postgresql": (
        "CREATE TABLE bench_raw_balance (account_id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE bench_raw_entry (id BIGSERIAL PRIMARY KEY, account_id BIGINT NOT NULL, amount BIGINT NOT NULL,"
        " business_date DATE NOT NULL, hash TEXT NOT NULL)",
    ),
    "sqlite": (
        "CREATE TABLE bench_raw_balance (account_id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
        "CREATE TABLE bench_raw_entry (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, amount INTEGER NOT NULL,"
        " business_date TEXT NOT NULL, hash TEXT NOT NULL)",
    ),
}


class Raw:
    """Opens raw connections to the benchmark's database, in the dialect's own DB-API driver."""

    def __init__(self, database_url: str):
        url = make_url(database_url)
        self.dialect = url.get_backend_name()
        if self.dialect == "postgresql":
            self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        else:
            self.path = url.database

    #: The placeholder of the driver's parameters.
    @property
    def mark(self) -> str:
        return "%s" if self.dialect == "postgresql" else "?"

    def connect(self):
        if self.dialect == "postgresql":
            return psycopg.connect(self.dsn)
        # Concurrent writers open their connections in one thread and write from their own.
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = WAL")
        return connection

    def streaming_cursor(self, connection):
        """Return a cursor that fetches a large result a batch at a time (server-side on PostgreSQL)."""
        if self.dialect != "postgresql":
            return connection.cursor()
        cursor = connection.cursor(name="bench_stream")
        cursor.itersize = STREAM_BATCH
        return cursor

    def begin(self, connection) -> None:
        """Start a write transaction the way the product does on this database."""
        if self.dialect == "sqlite":
            connection.execute("BEGIN IMMEDIATE")

    def create_scratch(self, account_ids: list[int]) -> None:
        """Create the raw side's tables, with a balance row for each of ``account_ids``."""
        with closing(self.connect()) as connection:
            for statement in SCRATCH_TABLES[self.dialect]:
                connection.execute(statement)
            self.begin(connection)
            cursor = connection.cursor()
            cursor.executemany(
                f"INSERT INTO bench_raw_balance VALUES ({self.mark}, 0)", [(account_id,) for account_id in account_ids]
            )
            connection.commit()

    def drop_scratch(self) -> None:
        with closing(self.connect()) as connection:
            connection.execute("DROP TABLE bench_raw_entry")
            connection.execute("DROP TABLE bench_raw_balance")
            if self.dialect == "postgresql":
                connection.commit()
