"""The ``ledger`` command: a Flask CLI group, so ``flask --app ledger …`` works the same.

Each command is a thin wrapper: it parses options, calls a service function inside
:func:`ledger.db.write_transaction` (or a read), and prints. A refusal of the ledger's
(:class:`~ledger.errors.LedgerError`) prints its message and exits with status 1. Commands
live in one module per concern; each module lists its commands in ``COMMANDS``.
"""

from __future__ import annotations

from flask.cli import FlaskGroup, NoAppException

from ledger.cli import bulk, certificates, core, expiry, exports, imports, orders, rules, shelf, standings, users

COMMAND_MODULES = (core, rules, standings, expiry, shelf, users, orders, bulk, imports, exports, certificates)


def init_app(app) -> None:
    for module in COMMAND_MODULES:
        for command in module.COMMANDS:
            app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``ledger`` console script."""
    FlaskGroup(create_app=_configured_app, help="The volunteer points ledger.")(prog_name="ledger")


def _configured_app():
    """Create the app; a configuration it refuses is said in one line, as Flask says an app it cannot find."""
    from ledger import create_app
    from ledger.errors import ConfigurationError

    try:
        return create_app()
    except ConfigurationError as error:
        raise NoAppException(str(error)) from None
