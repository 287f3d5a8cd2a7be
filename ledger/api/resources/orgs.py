"""Org nodes: the district → street → community → grid tree."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy import or_, select

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.schemas import PageInfo, PageQuery, StrictSchema, TimeZoneName, Whole, text
from ledger.db import db
from ledger.errors import Forbidden
from ledger.models import OrgKind, OrgNode
from ledger.orgs import create_org_node

orgs = Blueprint("orgs", __name__, url_prefix="/api/v1/orgs", description="The org tree: districts, streets, communities, grids.")


class OrgSchema(StrictSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    parent_id = fields.Integer(allow_none=True)
    grid_level = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    time_zone = fields.String()


class OrgPage(StrictSchema):
    items = fields.List(fields.Nested(OrgSchema))
    page = fields.Nested(PageInfo)


class OrgQuery(PageQuery):
    kind = fields.String(validate=validate.OneOf([k.value for k in OrgKind]))
    parent_id = fields.Integer(validate=validate.Range(1, 2**31 - 1))


class NewOrg(StrictSchema):
    code = text(maximum=64, required=True)
    name = text(maximum=200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in OrgKind]))
    parent_id = Whole(minimum=1, maximum=2**31 - 1, allow_none=True, load_default=None)
    time_zone = TimeZoneName(load_default=None, allow_none=True)


@orgs.route("")
class Orgs(MethodView):
    @orgs.arguments(OrgQuery, location="query")
    @orgs.response(200, OrgPage)
    def get(self, query):
        """List the org nodes you may see, parents before children."""
        scopes = current_principal().scopes(Action.READ_ORGS)
        statement = select(OrgNode).order_by(OrgNode.path)
        if scopes is not None:
            statement = statement.where(or_(*(OrgNode.path.startswith(path) for path in scopes)) if scopes else False)
        if "kind" in query:
            statement = statement.where(OrgNode.kind == query["kind"])
        if "parent_id" in query:
            statement = statement.where(OrgNode.parent_id == query["parent_id"])
        return page_of(statement, query)

    @orgs.arguments(NewOrg)
    @orgs.response(201, OrgSchema)
    def post(self, body):
        """Add an org node under a parent you administer (a new district needs a system admin)."""

        def create(principal, _key):
            parent = None
            if body["parent_id"] is not None:
                parent = object_in_scope(OrgNode, body["parent_id"], Action.MANAGE_ORGS, field="parent_id")
            elif principal.scopes(Action.MANAGE_ORGS) is not None:
                raise Forbidden("only a system admin adds a district")
            return create_org_node(
                db.session, code=body["code"], name=body["name"], kind=body["kind"], parent=parent, time_zone=body["time_zone"]
            )

        return idempotent_write(create, OrgSchema().dump)


@orgs.route("/<int:org_id>")
class Org(MethodView):
    @orgs.response(200, OrgSchema)
    def get(self, org_id):
        """Show one org node."""
        return object_in_scope(OrgNode, org_id, Action.READ_ORGS)


