"""The ORM's early refusal of what the database itself refuses.

The append-only tables (``APPEND_ONLY_TABLES``) and published rule-set versions are guarded
by triggers that the migrations create, on SQLite and PostgreSQL, whatever client connects:
they refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). Further insert rules the
database checks: a transaction's ``prev_hash`` is the hash of the previous link of its chain
(no forks, no gaps); a reversal never reverses a reversal; PostgreSQL checks at commit that a
transaction's postings sum to zero (SQLite has no deferred triggers: there the write path
builds balanced postings and ``ledger verify`` proves it).

The listeners below refuse the same changes earlier, with a clear
:class:`~ledger.errors.AppendOnlyViolation` instead of a database error.
"""

from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ledger.errors import AppendOnlyViolation
from ledger.models import APPEND_ONLY_MODELS, APPEND_ONLY_TABLES, RuleSetStatus, RuleSetVersion


def _is_frozen(instance) -> bool:
    """Tell whether a row may no longer change: a ledger row, or a rule set published before this flush."""
    if isinstance(instance, APPEND_ONLY_MODELS):
        return True
    if isinstance(instance, RuleSetVersion):
        history = inspect(instance).attrs.status.history
        status_before = history.deleted[0] if history.deleted else instance.status
        return status_before == RuleSetStatus.PUBLISHED
    return False


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_frozen_rows(session, _flush_context, _instances):
    for instance in session.deleted:
        if _is_frozen(instance):
            raise AppendOnlyViolation(f"{type(instance).__name__} rows are never deleted")
    for instance in session.dirty:
        if _is_frozen(instance) and session.is_modified(instance, include_collections=False):
            raise AppendOnlyViolation(
                f"{type(instance).__name__} rows are never changed; record a correction or a new version instead"
            )


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes_to_ledger_rows(state):
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in APPEND_ONLY_TABLES:
        raise AppendOnlyViolation(f"{table.name} is append-only; correct a mistake with a reversal")
