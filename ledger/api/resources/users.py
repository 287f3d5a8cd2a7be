"""Users: who may sign in, with which role over which org, and revoking their tokens.

Whoever manages users over an org (a street admin over its street) creates users with roles
inside it; only a system admin creates system admins. A user is listed, and their roles
shown, only as far as the caller manages users: roles elsewhere stay out of sight. Password
and token hashes never leave the server.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.participants import PATH_ID, in_subtrees, participant_in_scope, reference
from ledger.api.schemas import PageInfo, PageQuery, StrictSchema, text
from ledger.db import db
from ledger.errors import Forbidden, NotFound
from ledger.models import AppUser, OrgNode, Role, RoleAssignment, utc_now
from ledger.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, create_user, revoke_tokens

users = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users, their roles, and their tokens.")


class UserRole(StrictSchema):
    role = fields.String()
    org_id = fields.Integer(allow_none=True)


class UserSchema(StrictSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    participant_id = fields.Integer(allow_none=True)
    is_active = fields.Boolean()
    roles = fields.List(fields.Nested(UserRole), metadata={"description": "The roles within your reach only."})


class UserPage(StrictSchema):
    items = fields.List(fields.Nested(UserSchema))
    page = fields.Nested(PageInfo)


class NewUser(StrictSchema):
    username = text(maximum=64, required=True)
    display_name = text(maximum=200, required=True)
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH)
    )
    role = fields.String(required=True, validate=validate.OneOf([role.value for role in Role]))
    org_id = reference(
        load_default=None, allow_none=True, metadata={"description": "The org the role covers; null for system_admin."}
    )
    participant_id = reference(
        load_default=None, allow_none=True, metadata={"description": "Who the user is, for a volunteer signing in."}
    )

    @validates_schema
    def _role_has_its_org(self, body, **_kwargs):
        if (body["role"] == Role.SYSTEM_ADMIN) != (body["org_id"] is None):
            raise ValidationError("a system admin has no org; every other role is given over an org", "org_id")


class TokensRevoked(StrictSchema):
    user_id = fields.Integer()
    revoked = fields.Integer(metadata={"description": "How many tokens were still live."})


def _user_record(user: AppUser) -> dict:
    """Return the user as the caller may see them: with the roles they manage users over."""
    principal = current_principal()
    everywhere = principal.scopes(Action.MANAGE_USERS) is None
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "participant_id": user.participant_id,
        "is_active": user.is_active,
        "roles": [
            {"role": assignment.role, "org_id": assignment.org_id}
            for assignment in user.roles
            if everywhere or (assignment.org is not None and principal.may(Action.MANAGE_USERS, assignment.org))
        ],
    }


def _user_in_scope(user_id: int) -> AppUser:
    """Return the user if the caller manages users over an org one of their roles covers.

    A system admin's account is a system admin's business alone.
    """
    user = db.session.get(AppUser, user_id)
    principal = current_principal()
    if user is not None and principal.scopes(Action.MANAGE_USERS) is None:
        return user
    refusal = NotFound(f"user {user_id} does not exist, or has no role within your organisation", field="id")
    if user is None or any(assignment.org is None for assignment in user.roles):
        raise refusal
    for assignment in user.roles:
        try:
            principal.authorize(Action.MANAGE_USERS, assignment.org)
            return user
        except Forbidden as forbidden:
            refusal = forbidden
        except NotFound:
            continue
    raise refusal


@users.route("")
class Users(MethodView):
    @users.arguments(PageQuery, location="query")
    @users.response(200, UserPage)
    def get(self, query):
        """List the users who hold a role where you manage users, by user name."""
        scopes = current_principal().scopes(Action.MANAGE_USERS)
        statement = (
            select(AppUser)
            .options(selectinload(AppUser.roles).selectinload(RoleAssignment.org))
            .order_by(AppUser.username)
        )
        if scopes is not None:
            holders = select(RoleAssignment.user_id).join(OrgNode, RoleAssignment.org_id == OrgNode.id)
            statement = statement.where(AppUser.id.in_(holders.where(in_subtrees(scopes))))
        page = page_of(statement, query)
        page["items"] = [_user_record(user) for user in page["items"]]
        return page

    @users.arguments(NewUser)
    @users.response(201, UserSchema)
    @users.alt_response(409, description="The user name, or the participant, already has a user.")
    def post(self, body):
        """Create a user with a password and a role over an org you manage users of."""

        def work(principal, _key):
            if body["org_id"] is None:
                if principal.scopes(Action.MANAGE_USERS) is not None:
                    raise Forbidden("only a system admin creates system admins")
                org = None
            else:
                org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_USERS, field="org_id")
            participant = None
            if body["participant_id"] is not None:
                participant = participant_in_scope(body["participant_id"], Action.MANAGE_USERS, field="participant_id")
            return create_user(
                db.session,
                username=body["username"],
                display_name=body["display_name"],
                password=body["password"],
                role=body["role"],
                org=org,
                participant=participant,
            )

        return idempotent_write(work, _user_record)


@users.route(f"/<{PATH_ID}:user_id>/tokens/revoke")
class RevokeTokens(MethodView):
    @users.response(200, TokensRevoked)
    def post(self, user_id):
        """Revoke every token of a user at once (a lost phone, a staff member leaving)."""

        def work(_principal, _key):
            user = _user_in_scope(user_id)
            return {"user_id": user.id, "revoked": revoke_tokens(db.session, user=user, now=utc_now())}

        return idempotent_write(work, TokensRevoked().dump, status=200)
