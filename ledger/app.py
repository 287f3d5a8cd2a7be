"""The application factory: configuration, then each concern wires itself in with ``init_app``."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate

from ledger import api, cli, db, pages
from ledger.config import check_production_secrets, load_config

#: Alembic's scripts live at the top of the project, beside the package.
MIGRATIONS_DIRECTORY = str(Path(__file__).resolve().parent.parent / "migrations")

migrate = Migrate()


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app from the environment; ``test_config`` overrides it for tests."""
    app = Flask("ledger", instance_relative_config=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    check_production_secrets(app.config)
    os.makedirs(app.instance_path, exist_ok=True)

    import ledger.guards  # noqa: F401  (registers the ORM's append-only refusals)

    db.init_app(app)
    migrate.init_app(app, db.db, directory=MIGRATIONS_DIRECTORY, render_as_batch=True, compare_type=True)
    api.init_app(app)
    pages.init_app(app)
    cli.init_app(app)
    return app
