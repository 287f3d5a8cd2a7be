"""The HTTP API under ``/api/v1``, its health probes, and the one error format.

Every error leaves as an RFC 9457 problem document (``application/problem+json``) with a
stable ``code``: ledger refusals by their class, HTTP errors by their status, and anything
unexpected as a bare 500 whose details go to the log, never to the client.
"""

from __future__ import annotations

from http import HTTPStatus

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from ledger.db import db
from ledger.errors import LedgerError

api = Api()

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


def problem(status: int, code: str, detail: str, *, field: str | None = None, errors: dict | None = None):
    """Return an RFC 9457 problem response."""
    body = {
        "type": "about:blank",
        "status": status,
        "code": code,
        "title": _status_title(status),
        "detail": detail,
    }
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _ledger_error(error: LedgerError):
    errors = getattr(error, "errors", None) or ({error.field: [error.message]} if error.field else None)
    return problem(error.http_status, error.code, str(error), field=error.field, errors=errors)


def _http_error(error: HTTPException):
    if not wants_json():
        return error
    payload = getattr(error, "data", None) or {}
    messages = payload.get("messages") if isinstance(payload, dict) else None
    code = (error.name or "error").lower().replace(" ", "_")
    return problem(error.code or 500, code, error.description or error.name, errors=messages)


def _unexpected_error(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    if not wants_json():
        return InternalServerError()
    return problem(500, "internal_error", "Something went wrong on our side; it has been logged.")


def wants_json() -> bool:
    """Tell whether the client of this request should get JSON errors rather than pages."""
    return request.path.startswith(("/api/", "/healthz", "/readyz")) or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )


def init_app(app) -> None:
    api.init_app(app)
    api.register_blueprint(health)
    app.register_error_handler(LedgerError, _ledger_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
