"""Health probes for load balancers: ``/healthz`` (the process is up) and ``/readyz`` (it can serve)."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ledger.db import db

health = Blueprint("health", __name__, description="Whether the service is up and ready for traffic.")


@health.route("/healthz")
class Liveness(MethodView):
    @health.response(200, description="The process is up.")
    def get(self):
        """Tell a load balancer the process is alive."""
        return jsonify(status="ok")


@health.route("/readyz")
class Readiness(MethodView):
    @health.response(200, description="The database answers and its schema is current.")
    @health.alt_response(503, description="The database is unreachable or needs `ledger db upgrade`.")
    def get(self):
        """Tell a load balancer whether this instance can serve requests."""
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(connection).get_current_heads())
        except SQLAlchemyError:
            current_app.logger.exception("readiness check could not reach the database")
            return jsonify(status="unavailable", database="unreachable"), 503
        expected = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
        if current != expected:
            return jsonify(status="unavailable", database="ok", migrations="pending"), 503
        return jsonify(status="ready", database="ok", migrations="current")
