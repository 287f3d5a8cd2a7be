"""Refusals write nothing: run a write that must be refused and check no table changed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.db import db
from ledger.errors import InvalidInput, LedgerError


def row_counts(session) -> dict[str, int]:
    """Return the number of rows in every table of the model, counted in one statement."""
    tables = db.metadata.sorted_tables
    counts = session.execute(
        select(*(select(func.count()).select_from(table).scalar_subquery().label(table.name) for table in tables))
    ).one()
    return dict(zip((table.name for table in tables), counts))


def counts_without_replays(session) -> dict[str, int]:
    """Return every table's row count but the stored answers of Idempotency-Keys, which a refusal may not leave but a new key does."""
    return row_counts(session) | {"idempotency_record": 0}


def refused(session, write, work, error: type[LedgerError] = InvalidInput) -> LedgerError:
    """Run ``work`` in a write transaction, expect ``error``, check no row was written, return it."""
    before = row_counts(session)
    with pytest.raises(error) as refusal:
        write(work)
    assert row_counts(session) == before
    return refusal.value
