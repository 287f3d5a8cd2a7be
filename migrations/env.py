"""Alembic environment: runs the ledger's migrations on the app's database.

Online only: the triggers are created with dialect-specific SQL, so there is no offline
(SQL script) mode to keep honest.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_extension = current_app.extensions["migrate"]


def _skip_empty_autogenerate(context, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_online() -> None:
    options = dict(migrate_extension.configure_args)
    options.setdefault("process_revision_directives", _skip_empty_autogenerate)
    with migrate_extension.db.engine.connect() as connection:
        # SQLite runs DDL inside transactions too once pysqlite stops managing them (ledger/db.py).
        options.setdefault("transactional_ddl", True)
        context.configure(connection=connection, target_metadata=migrate_extension.db.metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `ledger db upgrade` against a database")
run_migrations_online()
