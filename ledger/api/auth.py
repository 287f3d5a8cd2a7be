"""Signing in: bearer tokens on every request, a login that issues them, and who is asking.

Every route except the health probes, the documentation and login needs
``Authorization: Bearer <token>``. Login is rate-limited per client address and user name.
Login and token creation return a secret once and are not replayable, so they take no
Idempotency-Key.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, request
from flask.views import MethodView
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ledger.api.policy import Principal
from ledger.api.schemas import StrictSchema, Whole, text
from ledger.db import db, write_transaction
from ledger.errors import Unauthenticated
from ledger.models import utc_now
from ledger.users import MAX_PASSWORD_LENGTH, authenticate, issue_token, revoke_token, user_for_token

limiter = Limiter(key_func=get_remote_address, default_limits=[])

auth = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign in, tokens, and who you are.")


#: Where a request keeps its principal: in the request itself, which no other request shares.
_PRINCIPAL = "ledger.principal"


def current_principal() -> Principal:
    """Return the signed-in user of this request, or refuse with 401."""
    if _PRINCIPAL not in request.environ:
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        user = user_for_token(db.session, secret.strip(), now=utc_now()) if scheme.lower() == "bearer" else None
        if user is None:
            raise Unauthenticated("sign in: send Authorization: Bearer <token> (POST /api/v1/auth/login gives one)")
        request.environ[_PRINCIPAL] = Principal.of(user)
    return request.environ[_PRINCIPAL]


class LoginRequest(StrictSchema):
    username = text(maximum=64, required=True)
    password = fields.String(required=True, validate=validate.Length(1, MAX_PASSWORD_LENGTH))
    token_name = text(maximum=100, load_default="api")
    #: Lifetime of the token in hours (default 720: thirty days).
    hours = Whole(minimum=1, maximum=24 * 365, load_default=24 * 30)


class TokenResponse(StrictSchema):
    token = fields.String(metadata={"description": "The bearer token; shown this once and never again."})
    token_id = fields.Integer()
    expires_at = fields.DateTime()
    username = fields.String()


class RoleSchema(StrictSchema):
    role = fields.String()
    org_id = fields.Integer(allow_none=True)
    org_code = fields.String(allow_none=True)


class MeResponse(StrictSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    participant_id = fields.Integer(allow_none=True)
    roles = fields.List(fields.Nested(RoleSchema))


def _login_key() -> str:
    body = request.get_json(silent=True) or {}
    name = body.get("username") if isinstance(body, dict) else None
    return f"{get_remote_address()}:{name if isinstance(name, str) else ''}"[:200]


@auth.route("/login")
class Login(MethodView):
    decorators = [limiter.limit(lambda: current_app.config["LEDGER_LOGIN_RATE_LIMIT"], key_func=_login_key)]

    @auth.arguments(LoginRequest)
    @auth.response(201, TokenResponse)
    @auth.alt_response(401, description="Wrong user name or password (which one is never said).")
    @auth.alt_response(429, description="Too many attempts; wait a minute.")
    def post(self, body):
        """Sign in with a user name and password; get a bearer token."""

        def sign_in():
            user = authenticate(db.session, body["username"], body["password"])
            if user is None:
                raise Unauthenticated("wrong user name or password")
            issued = issue_token(
                db.session, user=user, name=body["token_name"], now=utc_now(), lifetime=dt.timedelta(hours=body["hours"])
            )
            return {
                "token": issued.secret,
                "token_id": issued.token.id,
                "expires_at": issued.token.expires_at,
                "username": user.username,
            }

        return write_transaction(sign_in)


@auth.route("/me")
class Me(MethodView):
    @auth.response(200, MeResponse)
    def get(self):
        """Say who the token belongs to and which roles they hold where."""
        principal = current_principal()
        user = principal.user
        return {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "participant_id": user.participant_id,
            "roles": [
                {"role": r.role, "org_id": r.org_id, "org_code": r.org.code if r.org else None} for r in user.roles
            ],
        }


@auth.route("/logout")
class Logout(MethodView):
    @auth.response(204)
    def post(self):
        """Revoke the token this request was made with."""
        principal = current_principal()
        secret = request.headers["Authorization"].partition(" ")[2].strip()
        write_transaction(lambda: revoke_token(db.session, user=principal.user, secret=secret, now=utc_now()))
        return None


def init_app(app, api) -> None:
    app.config.setdefault("LEDGER_LOGIN_RATE_LIMIT", "10 per minute")
    limiter.init_app(app)
    api.register_blueprint(auth)

