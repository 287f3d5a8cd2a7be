"""The ``ledger`` command: a Flask CLI group, so ``flask --app ledger …`` works the same.

Each command is a thin wrapper: it parses options, calls a service function inside
:func:`ledger.db.write_transaction` (or a read), and prints. A refusal of the ledger's
(:class:`~ledger.errors.LedgerError`) prints its message and exits with status 1. Commands
live in one module per concern; each module lists its commands in ``COMMANDS``.
"""

from __future__ import annotations

from flask.cli import FlaskGroup

from ledger.cli import bulk, certificates, core, expiry, exports, imports, orders, rules, shelf, standings, users

COMMAND_MODULES = (core, rules, standings, expiry, shelf, users, orders, bulk, imports, exports, certificates)


def init_app(app) -> None:
    for module in COMMAND_MODULES:
        for command in module.COMMANDS:
            app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``ledger`` console script."""
    from ledger import create_app

    FlaskGroup(create_app=create_app, help="The volunteer points ledger.")(prog_name="ledger")
