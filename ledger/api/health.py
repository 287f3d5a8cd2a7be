"""Health probes for load balancers: ``/healthz`` (the process is up) and ``/readyz`` (it can serve)."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from ledger.db import schema_state

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
        state = schema_state()
        if state == "unreachable":
            return jsonify(status="unavailable", database="unreachable"), 503
        if state == "pending":
            return jsonify(status="unavailable", database="ok", migrations="pending"), 503
        return jsonify(status="ready", database="ok", migrations="current")
