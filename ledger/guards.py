"""What the database refuses by itself, and the ORM's early refusal of the same.

The ledger tables are append-only. Triggers make the database refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL) whatever client connects; the ORM listener below refuses the same
earlier with a clear :class:`~ledger.errors.AppendOnlyViolation`.

Further insert rules the database checks on both dialects: a transaction's ``prev_hash`` is
the hash of the previous link of its chain (no forks, no gaps), and a reversal never
reverses a reversal. PostgreSQL also checks at commit that every transaction's postings sum
to zero, with a deferred constraint trigger; SQLite has no deferred triggers, so there the
write path builds balanced postings and ``ledger verify`` proves it.

The migrations call :func:`create_guards` and :func:`drop_guards`.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from ledger.errors import AppendOnlyViolation
from ledger.chain import GENESIS_HASH
from ledger.models import APPEND_ONLY_MODELS, APPEND_ONLY_TABLES

REFUSE_FUNCTION = "ledger_refuse_change"


def append_only_trigger(table: str) -> str:
    """Name of the trigger that refuses UPDATE and DELETE on ``table``."""
    return f"{table}_append_only"


def _postgresql_create() -> list[str]:
    statements = [
        f"""
        CREATE FUNCTION {REFUSE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'append-only: % on % is refused; correct with a reversal', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END $$
        """,
        """
        CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            tx_id bigint;
            total numeric;
            legs bigint;
        BEGIN
            IF TG_TABLE_NAME = 'posting' THEN
                tx_id := NEW.transaction_id;
            ELSE
                tx_id := NEW.id;
            END IF;
            SELECT coalesce(sum(amount), 0), count(*) INTO total, legs
              FROM posting WHERE transaction_id = tx_id;
            IF legs < 2 OR total <> 0 THEN
                RAISE EXCEPTION 'ledger transaction % is unbalanced: % postings summing to %', tx_id, legs, total
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE FUNCTION ledger_check_transaction_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            expected text;
            original_kind text;
        BEGIN
            IF NEW.seq = 1 THEN
                expected := '{GENESIS_HASH}';
            ELSE
                SELECT hash INTO expected FROM ledger_transaction
                 WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1;
            END IF;
            IF expected IS DISTINCT FROM NEW.prev_hash THEN
                RAISE EXCEPTION 'ledger transaction must link to link % of chain %', NEW.seq - 1, NEW.chain_id
                    USING ERRCODE = 'check_violation';
            END IF;
            IF NEW.reverses_id IS NOT NULL THEN
                SELECT kind INTO original_kind FROM ledger_transaction WHERE id = NEW.reverses_id;
                IF original_kind = 'reverse' THEN
                    RAISE EXCEPTION 'a reversal cannot itself be reversed'
                        USING ERRCODE = 'check_violation';
                END IF;
            END IF;
            RETURN NEW;
        END $$
        """,
        """
        CREATE TRIGGER ledger_transaction_insert_rules BEFORE INSERT ON ledger_transaction
            FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_insert()
        """,
        """
        CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
        """,
        """
        CREATE CONSTRAINT TRIGGER posting_balanced AFTER INSERT ON posting
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
        """,
    ]
    for table in APPEND_ONLY_TABLES:
        statements += [
            f"""
            CREATE TRIGGER {append_only_trigger(table)} BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {REFUSE_FUNCTION}()
            """,
            f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION {REFUSE_FUNCTION}()
            """,
        ]
    return statements


def _postgresql_drop() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"DROP TRIGGER IF EXISTS {append_only_trigger(table)} ON {table}",
        ]
    return statements + [
        "DROP TRIGGER IF EXISTS posting_balanced ON posting",
        "DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction",
        "DROP TRIGGER IF EXISTS ledger_transaction_insert_rules ON ledger_transaction",
        "DROP FUNCTION IF EXISTS ledger_check_transaction_insert()",
        "DROP FUNCTION IF EXISTS ledger_check_balanced()",
        f"DROP FUNCTION IF EXISTS {REFUSE_FUNCTION}()",
    ]


def _sqlite_create() -> list[str]:
    statements = [
        f"""
        CREATE TRIGGER ledger_transaction_insert_rules BEFORE INSERT ON ledger_transaction
        BEGIN
            SELECT RAISE(ABORT, 'ledger transaction must link to the previous link of its chain')
             WHERE NEW.prev_hash IS NOT (
                CASE WHEN NEW.seq = 1 THEN '{GENESIS_HASH}'
                     ELSE (SELECT hash FROM ledger_transaction
                            WHERE chain_id = NEW.chain_id AND seq = NEW.seq - 1)
                END);
            SELECT RAISE(ABORT, 'a reversal cannot itself be reversed')
             WHERE NEW.reverses_id IS NOT NULL
               AND (SELECT kind FROM ledger_transaction WHERE id = NEW.reverses_id) = 'reverse';
        END
        """
    ]
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            statements.append(
                f"""
                CREATE TRIGGER {append_only_trigger(table)}_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN
                    SELECT RAISE(ABORT, 'append-only: {operation} on {table} is refused; correct with a reversal');
                END
                """
            )
    return statements


def _sqlite_drop() -> list[str]:
    statements = ["DROP TRIGGER IF EXISTS ledger_transaction_insert_rules"]
    for table in APPEND_ONLY_TABLES:
        statements += [f"DROP TRIGGER IF EXISTS {append_only_trigger(table)}_{op}" for op in ("update", "delete")]
    return statements


def create_guards(connection) -> None:
    """Create the triggers on ``connection``'s database (called by the first migration)."""
    if connection.dialect.name == "postgresql":
        # psycopg reads % as a placeholder; PL/pgSQL's RAISE needs it literally.
        _execute(connection, [statement.replace("%", "%%") for statement in _postgresql_create()])
    else:
        _execute(connection, _sqlite_create())


def drop_guards(connection) -> None:
    """Drop what :func:`create_guards` made."""
    _execute(connection, _postgresql_drop() if connection.dialect.name == "postgresql" else _sqlite_drop())


def _execute(connection, statements: list[str]) -> None:
    for statement in statements:
        connection.exec_driver_sql(statement)


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_ledger_rows(session, _flush_context, _instances):
    for instance in session.deleted:
        if isinstance(instance, APPEND_ONLY_MODELS):
            raise AppendOnlyViolation(f"{type(instance).__name__} rows are append-only and cannot be deleted")
    for instance in session.dirty:
        if isinstance(instance, APPEND_ONLY_MODELS) and session.is_modified(instance, include_collections=False):
            raise AppendOnlyViolation(
                f"{type(instance).__name__} rows are append-only; correct a mistake with a reversal"
            )


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes_to_ledger_rows(state):
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in APPEND_ONLY_TABLES:
        raise AppendOnlyViolation(f"{table.name} is append-only; correct a mistake with a reversal")
