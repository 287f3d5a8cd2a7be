"""The HTTP API under ``/api/v1``: every capability over JSON REST, documented with OpenAPI.

The OpenAPI document is at ``/api/v1/openapi.json`` and an interactive page at
``/api/v1/docs``, served from the installed swagger-ui-bundle package so that it works on a
closed office network. Views are thin: parse with a schema, authorize with
:mod:`ledger.api.policy`, call a service inside one write transaction (and, for a POST that
writes, :mod:`ledger.api.idempotency`), serialise. Errors are RFC 9457 problem documents
(:mod:`ledger.api.problems`).
"""

from __future__ import annotations

import copy
import json
from functools import cache

from flask import Blueprint, current_app, request, send_from_directory
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from swagger_ui_bundle import swagger_ui_path

from ledger.api import auth, problems
from ledger.api.health import health
from ledger.api.auth import current_principal
from ledger.api.idempotency import HEADER, idempotency_key
from ledger.api.problems import ProblemSchema, problem
from ledger.api.resources import RESOURCE_BLUEPRINTS
from ledger.transactions import IDEMPOTENCY_KEY_PATTERN

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": True,
    "description": "New for each write; a retry with the same key and request gets the first answer again, "
    "marked `Idempotent-Replayed: true`, and writes nothing.",
    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY_PATTERN.pattern}$"},
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
#: Paths anyone may call without signing in.
PUBLIC_PATHS = {"/healthz", "/readyz", "/api/v1/auth/login", "/api/v1/certificate-checks/{code}"}


class LedgerApi(Api):
    """flask-smorest's Api, documenting every error as the RFC 9457 problem document it is."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        self._undocumented = []
        super().init_app(app, spec_kwargs=spec_kwargs)

    def register_blueprint(self, blp, *, parameters=None, **options):
        """Route the blueprint's views now; document them when the OpenAPI document is first read.

        Documenting every route is most of an app's start-up time, and most workers never serve
        the document: each gunicorn worker, CLI command and test app starts without that cost.
        """
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    @property
    def spec(self):
        """The OpenAPI document, with every blueprint registered so far documented."""
        undocumented, self._undocumented = getattr(self, "_undocumented", []), []
        for blp, name, parameters in undocumented:
            blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
            self._spec.tag({"name": name, "description": blp.description})
        return self._spec

    @spec.setter
    def spec(self, value):
        self._spec = value

    def _openapi_json(self):
        # A copy: the spec hands out its own dicts, which would keep what is added below for the next request.
        document = copy.deepcopy(self.spec.to_dict())
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if not isinstance(operation, dict):
                    continue
                if path in PUBLIC_PATHS:
                    operation["security"] = []
                for status, response in operation.get("responses", {}).items():
                    if status == "default" or int(status) >= 400:
                        description = response.get("description", "An error") if isinstance(response, dict) else "An error"
                        operation["responses"][status] = {"description": description, "content": PROBLEM_CONTENT}
        for rule in current_app.url_map.iter_rules():
            if "POST" in rule.methods and rule.rule.startswith("/api/") and _needs_an_idempotency_key(rule.endpoint):
                operation = document["paths"].get(FlaskPlugin.flaskpath2openapi(rule.rule), {}).get("post")
                if operation is not None:
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
        document["security"] = [{"bearer": []}]
        return current_app.response_class(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json")


api = LedgerApi(
    spec_kwargs={
        "info": {
            "description": "志愿服务积分台账 · Volunteer points ledger. Sign in with POST /api/v1/auth/login, "
            "then send `Authorization: Bearer <token>`. Every POST that writes needs an `Idempotency-Key` header."
        }
    }
)

#: The Swagger UI's own files, from the installed package rather than a CDN.
swagger_files = Blueprint("swagger_files", __name__)


@swagger_files.get("/api/v1/docs/static/<path:filename>")
def swagger_file(filename: str):
    return send_from_directory(swagger_ui_path, filename)


def _refuse_duplicate_query_parameters():
    """Refuse ``?page=1&page=2``: which one was meant cannot be guessed."""
    if not request.path.startswith("/api/"):
        return None
    for name in request.args:
        if len(request.args.getlist(name)) > 1:
            return problem(400, "duplicate_parameter", f"the query parameter {name!r} appears more than once", errors={name: ["appears more than once"]})
    return None


def _refuse_unknown_query_parameters():
    """Refuse a query parameter the endpoint does not take, naming it and those it does.

    webargs drops unknown query parameters, and an endpoint without a query schema never looks:
    ``?perod=2025`` would answer for this year as if it had been understood.
    """
    if not request.path.startswith("/api/") or not request.args or request.endpoint is None:
        return None
    taken = _query_parameters(current_app.view_functions[request.endpoint], request.method)
    unknown = [name for name in request.args if name not in taken]
    if not unknown:
        return None
    accepted = f"takes: {', '.join(sorted(taken))}" if taken else "takes no query parameters"
    return problem(
        422,
        "invalid_input",
        f"unknown query parameter {unknown[0]!r}; this endpoint {accepted}",
        errors={f"query.{name}": ["Unknown field."] for name in unknown},
    )


@cache
def _query_parameters(view, method: str) -> frozenset[str]:
    """Return the names of the query parameters ``view`` parses for ``method``."""
    declared = getattr(_handler_of(view, method), "_apidoc", {}).get("arguments", {}).get("parameters", [])
    names = set()
    for argument in declared:
        if argument["in"] == "query":
            schema = argument["schema"]() if isinstance(argument["schema"], type) else argument["schema"]
            names.update(field.data_key or name for name, field in schema.fields.items() if not field.dump_only)
    return frozenset(names)


def _refuse_writes_without_a_key():
    """Refuse a POST that writes but carries no usable Idempotency-Key, before its body is parsed.

    Every POST under ``/api/`` writes unless its view is marked ``takes_no_idempotency_key``, so a
    new write needs a key without anyone remembering to ask for one. Signing in and out take
    none. A signed-out caller hears that first.
    """
    if request.method != "POST" or not request.path.startswith("/api/") or request.endpoint is None:
        return
    if not _needs_an_idempotency_key(request.endpoint):
        return
    current_principal()
    idempotency_key()


def _needs_an_idempotency_key(endpoint: str) -> bool:
    """Tell whether a POST to ``endpoint`` writes, and so needs a key: all do but signing in and out and marked views."""
    if endpoint.rpartition(".")[0] == "auth":
        return False
    return not getattr(_handler_of(current_app.view_functions[endpoint], "POST"), "takes_no_idempotency_key", False)


def _handler_of(view, method: str):
    """Return the function that answers ``method`` for ``view`` (a method of a MethodView's class)."""
    # Flask answers HEAD with the GET view.
    method = "get" if method == "HEAD" else method.lower()
    return getattr(view.view_class, method, None) if hasattr(view, "view_class") else view


def _refuse_nul_characters():
    """Refuse text with NUL characters: no field needs one, and PostgreSQL cannot store one."""
    if not request.path.startswith("/api/"):
        return None
    if request.mimetype == "multipart/form-data":
        # An uploaded file may be binary (an XLSX workbook is a zip): its reader checks its text.
        found = any("\x00" in value for value in request.form.values())
    else:
        body = request.get_data(cache=True)
        found = b"\\u0000" in body or b"\x00" in body
    if found or any("\x00" in value for value in request.args.values()):
        return problem(400, "bad_request", "text must not contain NUL (\\u0000) characters")
    return None


def init_app(app) -> None:
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/api/v1/docs/static/")
    api.init_app(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.register_blueprint(health)
    auth.init_app(app, api)
    for blueprint in RESOURCE_BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(swagger_files)
    app.before_request(_refuse_duplicate_query_parameters)
    app.before_request(_refuse_unknown_query_parameters)
    app.before_request(_refuse_nul_characters)
    app.before_request(_refuse_writes_without_a_key)
    problems.init_app(app)
