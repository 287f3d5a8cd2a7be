"""The migrations build the whole schema, triggers included, match the models, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from ledger.db import db
from ledger.models import APPEND_ONLY_TABLES


def trigger_names(connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return set(connection.execute(text(query)).scalars())


def test_migrations_upgrade_an_empty_database_match_the_models_and_downgrade_to_nothing(make_app, empty_database_url):
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata
            )
            assert differences == []
            triggers = trigger_names(connection)
            assert all(any(name.startswith(f"{table}_append_only") for name in triggers) for table in APPEND_ONLY_TABLES)
            kinds = set(connection.execute(text("SELECT code FROM transaction_kind")).scalars())
            assert {"opening_balance", "earn", "redeem", "expire", "adjust", "penalty", "reverse"} <= kinds

        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
            assert trigger_names(connection) == set()

        upgrade()  # and back up again, from what the downgrade left
        with db.engine.connect() as connection:
            assert "ledger_transaction" in inspect(connection).get_table_names()
