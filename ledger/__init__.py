"""Volunteer points ledger: an append-only, double-entry ledger of community service.

``create_app`` is imported lazily so that the pure domain modules (``ledger.points``,
``ledger.rewards``, ``ledger.chain``, ``ledger.identity``) load without Flask or a database.
"""


def create_app(test_config=None):
    """Create the Flask application (see :func:`ledger.app.create_app`)."""
    from ledger.app import create_app as build

    return build(test_config)
