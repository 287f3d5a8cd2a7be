"""Orders (需求, 微心愿, 共建项目): posted, published, claimed, delivered, confirmed, and the deadline job.

The order service (:mod:`ledger.orders`) keeps every rule of an order's life: which state
allows what (a refusal names the state, 409), one place per claimant, and four eyes on a
delivery (nobody confirms or rejects one they took part in, 403). Here a request is parsed
and authorized:

* reading orders is for everyone in scope; those who run orders there (managing or
  confirming them) also see drafts and the beneficiary's name and contact. Everyone else
  sees published orders only, the name masked ("王**") and no contact, except the claimant
  who holds a place on the order and must reach the beneficiary to deliver;
* a volunteer claims, withdraws and delivers for themselves only: anyone else's claim is
  not found. Staff claim for a participant or a team in their scope;
* every write goes through the Idempotency-Key replay, and the service replays an identical
  call too: confirming again, with the same key or a new one, posts nothing more.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action, Principal
from ledger.api.resources.activities import ActivityShown, shown
from ledger.api.resources.common import object_in_scope
from ledger.api.resources.ledger import PARTICIPANT
from ledger.api.resources.participants import Flag, participant_in_scope, reference
from ledger.api.resources.standings import ORG, YearQuery
from ledger.api.schemas import AwareDateTime, NoFields, PageInfo, PageQuery, QueryWhole, StrictSchema, Whole, text
from ledger.db import db
from ledger.errors import Forbidden, NotFound
from ledger.models import BENEFICIARY_GROUPS, OrderClaim, OrgNode, ServiceOrder, Team
from ledger.order_flow import HOLDING, ClaimantKind, OrderKind, OrderState
from ledger.orders import (
    MAX_BENEFICIARY_LENGTH,
    MAX_CAPACITY,
    MAX_DESCRIPTION_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_SERVED_BY,
    OrderDetails,
    Step,
    cancel_order,
    claim_counts,
    claim_order,
    close_overdue,
    confirm,
    deliver,
    mask_name,
    open_orders_near,
    order_view,
    orders_by_state,
    post_order,
    publish_order,
    reject,
    withdraw,
)
from ledger.orgs import MAX_NAME_LENGTH

orders = Blueprint(
    "orders",
    __name__,
    url_prefix="/api/v1",
    description="Orders (需求, 微心愿, 共建项目): post, publish, claim, deliver, confirm or reject, and close overdue claims.",
)

#: Orders, claims and their events have BIGINT ids: a larger number is no route at all (404).
MAX_BIG_ID = 2**63 - 1
ORDER = f"<int(min=1, max={MAX_BIG_ID}):order_id>"
CLAIM = f"<int(min=1, max={MAX_BIG_ID}):claim_id>"
#: Days an order's deadline or the deadline job's day may name: this century, so no time zone overflows them.
CENTURY = (dt.date(2000, 1, 1), dt.date(2099, 12, 31))


# Who sees what -----------------------------------------------------------------------------


def runs_orders(principal: Principal, org: OrgNode) -> bool:
    """Tell whether the caller runs orders in ``org`` (manages or confirms them): they see drafts and beneficiaries."""
    return principal.may(Action.MANAGE_ORDERS, org) or principal.may(Action.CONFIRM_ORDERS, org)


def order_in_scope(order_id: int) -> OrderDetails:
    """Return an order the caller may read, with its claims and history; a draft only for those who run orders."""
    order = object_in_scope(ServiceOrder, order_id, Action.READ_ORDERS, field="order_id")
    details = order_view(db.session, order.id)
    if details.state is OrderState.DRAFT and not runs_orders(current_principal(), order.org):
        raise NotFound(f"ServiceOrder {order_id} does not exist", field="order_id")
    return details


def order_to_act_on(order_id: int, action: Action) -> ServiceOrder:
    """Return an order the caller may see and do ``action`` on: not found outside their sight, else forbidden."""
    order = order_in_scope(order_id).order
    current_principal().authorize(action, order.org)
    return order


def claim_to_act_on(claim_id: int, action: Action) -> OrderClaim:
    """Return a claim the caller may do ``action`` on; a volunteer acts only on their own, others' are not found."""
    return object_in_scope(
        OrderClaim,
        claim_id,
        action,
        field="claim_id",
        org_of=lambda claim: db.session.get(ServiceOrder, claim.order_id).org,
    )


def reading_roots(principal: Principal) -> list[OrgNode]:
    """Return the tops of the subtrees where the caller reads orders (every root for a system admin)."""
    paths = principal.scopes(Action.READ_ORDERS)
    if paths is None:
        return list(db.session.scalars(select(OrgNode).where(OrgNode.parent_id.is_(None)).order_by(OrgNode.id)))
    tops = sorted(path for path in set(paths) if not any(path != other and path.startswith(other) for other in paths))
    return list(db.session.scalars(select(OrgNode).where(OrgNode.path.in_(tops)).order_by(OrgNode.path)))


def require_deadline_job_rights(principal: Principal) -> None:
    """Refuse a caller who does not manage orders over the whole tree, which the deadline job reaches."""
    roots = db.session.scalars(select(OrgNode).where(OrgNode.parent_id.is_(None)))
    if not all(principal.may(Action.MANAGE_ORDERS, root) for root in roots):
        raise Forbidden(
            "the deadline job ends the overdue orders of every community; it needs manage_orders over the whole tree "
            "(or run `ledger orders close-overdue` on the server)"
        )


# What a response shows ---------------------------------------------------------------------


def beneficiary(order: ServiceOrder, *, revealed: bool) -> dict:
    """Return whose need an order is: in full when ``revealed``, else the name masked and no contact."""
    return {
        "beneficiary_group": order.beneficiary_group,
        "beneficiary_name": order.beneficiary_name if revealed else mask_name(order.beneficiary_name),
        "beneficiary_contact": order.beneficiary_contact if revealed else None,
        "beneficiary_masked": not revealed,
    }


def order_shown(order: ServiceOrder, state: OrderState, places_left: int, *, revealed: bool) -> dict:
    return {
        "id": order.id,
        "org_id": order.org_id,
        "org_name": order.org.name,
        "kind": order.kind,
        "title": order.title,
        "description": order.description,
        **beneficiary(order, revealed=revealed),
        "activity_type": order.activity_type,
        "claimant_kind": order.claimant_kind,
        "capacity": order.capacity,
        "places_left": places_left,
        "state": state,
        "deadline": order.deadline,
        "created_by_id": order.created_by_id,
        "created_at": order.created_at,
    }


def holds_a_place(principal: Principal, details: OrderDetails) -> bool:
    """Tell whether the caller, as a person or unit, holds a place on the order."""
    me = principal.user.participant_id
    return me is not None and any(
        line.claimant_kind is not ClaimantKind.TEAM and line.claimant_id == me and line.state in HOLDING
        for line in details.claims
    )


def details_shown(details: OrderDetails) -> dict:
    """Return an order as its reader may see it: with its claims and its whole history, oldest first."""
    principal = current_principal()
    revealed = runs_orders(principal, details.order.org) or holds_a_place(principal, details)
    return {
        **order_shown(details.order, details.state, details.places_left, revealed=revealed),
        "claims": details.claims,
        "history": details.history,
    }


def step_shown(step: Step) -> dict:
    """Return what a write did: the event it appended (or found), the order after it, and any points it posted."""
    details = order_view(db.session, step.order.id)
    return {
        "event": next(line for line in details.history if line.event.id == step.event.id),
        "replayed": step.replayed,
        "order": details_shown(details),
        "recorded": shown([recorded.activity for recorded in step.recorded]),
    }


# Schemas -----------------------------------------------------------------------------------


class Deadline(fields.String):
    """A day (the end of it, in the order's time zone) or a date and time with its offset."""

    default_error_messages = {
        "invalid": "must be a day such as 2026-12-20 or a date and time with its offset such as 2026-12-20T18:00:00+08:00"
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text_value = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = fields.Date().deserialize(text_value) if len(text_value) == 10 else AwareDateTime().deserialize(text_value)
        except ValidationError:
            raise self.make_error("invalid") from None
        day = moment if type(moment) is dt.date else moment.date()
        if not CENTURY[0] <= day <= CENTURY[1]:
            raise ValidationError("must be in this century")
        return moment


class NewOrder(StrictSchema):
    org_id = reference(required=True, metadata={"description": "The community or grid whose need it is."})
    kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in OrderKind]))
    title = text(maximum=MAX_NAME_LENGTH, required=True)
    activity_type = text(
        maximum=40, required=True, metadata={"description": "The rule set's activity type that confirmation scores."}
    )
    deadline = Deadline(
        required=True,
        metadata={"description": "A day (the end of it, in the org's time zone) or a date and time with its offset."},
    )
    beneficiary_group = fields.String(load_default="other", validate=validate.OneOf(BENEFICIARY_GROUPS))
    capacity = Whole(minimum=1, maximum=MAX_CAPACITY, load_default=1, metadata={"description": "How many claimants it takes."})
    claimant_kind = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf([kind.value for kind in ClaimantKind]),
        metadata={"description": "Who may claim it (default: units for a co-building project, anyone otherwise)."},
    )
    beneficiary_name = text(
        maximum=MAX_BENEFICIARY_LENGTH,
        load_default=None,
        allow_none=True,
        metadata={"description": "Shown to staff and to whoever holds a place; masked for everyone else."},
    )
    beneficiary_contact = text(
        maximum=MAX_BENEFICIARY_LENGTH,
        load_default=None,
        allow_none=True,
        metadata={"description": "Shown to staff and to whoever holds a place only."},
    )
    description = text(maximum=MAX_DESCRIPTION_LENGTH, load_default=None, allow_none=True)
    publish = Flag(load_default=False, metadata={"description": "true: published at once; false: kept as a draft."})


class Reason(StrictSchema):
    reason = text(maximum=MAX_NOTE_LENGTH, required=True, metadata={"description": "Read by the claimants."})


class ClaimRequest(StrictSchema):
    participant_id = reference(metadata={"description": "The person or co-building unit claiming (a volunteer: themselves)."})
    team_id = reference(metadata={"description": "Or the team claiming (staff only)."})

    @validates_schema
    def _one_claimant(self, data, **_kwargs):
        if ("participant_id" in data) == ("team_id" in data):
            raise ValidationError("name either a participant or a team", field_name="participant_id")


class Delivery(StrictSchema):
    served_from = AwareDateTime(required=True)
    served_until = AwareDateTime(required=True)
    note = text(maximum=MAX_NOTE_LENGTH, required=True, metadata={"description": "What was done."})
    served_by = fields.List(
        reference(),
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, MAX_SERVED_BY),
        metadata={"description": "A team's members who served (required for a team), or the staff a unit sent."},
    )


class Confirmation(StrictSchema):
    rating = Whole(
        minimum=1, maximum=5, load_default=None, allow_none=True, metadata={"description": "The beneficiary's rating."}
    )


class OverdueRunRequest(StrictSchema):
    as_of = fields.Date(
        required=True,
        validate=validate.Range(*CENTURY),
        metadata={"description": "End every order whose deadline passed by the end of this day, in its org's time zone."},
    )


class OrderQuery(PageQuery):
    org_id = QueryWhole(minimum=1, maximum=2**31 - 1, metadata={"description": "Only orders in this org's subtree."})
    state = fields.String(validate=validate.OneOf([state.value for state in OrderState]))
    kind = fields.String(validate=validate.OneOf([kind.value for kind in OrderKind]))


class OrderShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    org_name = fields.String()
    kind = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    beneficiary_group = fields.String()
    beneficiary_name = fields.String(allow_none=True, metadata={"description": "Masked (\"王**\") unless you run orders here or hold a place."})
    beneficiary_contact = fields.String(allow_none=True, metadata={"description": "Null unless you run orders here or hold a place."})
    beneficiary_masked = fields.Boolean()
    activity_type = fields.String()
    claimant_kind = fields.String()
    capacity = fields.Integer()
    places_left = fields.Integer()
    state = fields.String(metadata={"description": "draft, published, claimed, delivered, confirmed, cancelled or expired."})
    deadline = fields.DateTime()
    created_by_id = fields.Integer()
    created_at = fields.DateTime()


class OrderPage(StrictSchema):
    items = fields.List(fields.Nested(OrderShown))
    page = fields.Nested(PageInfo)


class ClaimShown(StrictSchema):
    id = fields.Integer(attribute="claim_id")
    claimant_kind = fields.String(metadata={"description": "person, unit or team."})
    claimant_id = fields.Integer(metadata={"description": "The participant's id, or the team's."})
    name = fields.String()
    state = fields.String(metadata={"description": "claimed, withdrawn, delivered, confirmed or overdue."})
    claimed_at = fields.DateTime()


class OrderEventShown(StrictSchema):
    """One line of an order's history: the event, and the name of who did it."""

    id = fields.Integer(attribute="event.id")
    happening = fields.String(
        attribute="event.happening", metadata={"description": "published, claimed, withdrawn, delivered, confirmed, rejected, …"}
    )
    claim_id = fields.Integer(attribute="event.claim_id", allow_none=True)
    at = fields.DateTime(attribute="event.at")
    actor_id = fields.Integer(attribute="event.actor_id")
    actor_name = fields.String()
    note = fields.String(
        attribute="event.note",
        allow_none=True,
        metadata={"description": "What was delivered, or why it was rejected or cancelled."},
    )
    rating = fields.Integer(attribute="event.rating", allow_none=True)
    served_from = fields.DateTime(attribute="event.served_from", allow_none=True)
    served_until = fields.DateTime(attribute="event.served_until", allow_none=True)
    served_by = fields.List(fields.Integer(), attribute="event.served_by", allow_none=True)
    transaction_id = fields.Integer(
        attribute="event.transaction_id",
        allow_none=True,
        metadata={"description": "What a confirmation or a penalty posted."},
    )


class OrderDetail(OrderShown):
    claims = fields.List(fields.Nested(ClaimShown))
    history = fields.List(fields.Nested(OrderEventShown), metadata={"description": "Everything that happened, oldest first."})


class StepShown(StrictSchema):
    event = fields.Nested(OrderEventShown, metadata={"description": "What this write appended, or the identical one before it."})
    replayed = fields.Boolean(metadata={"description": "true: an identical earlier call had done it; nothing was written."})
    order = fields.Nested(OrderDetail)
    recorded = fields.List(
        fields.Nested(ActivityShown), metadata={"description": "The service it recorded and what each earned."}
    )


class OpenOrderShown(StrictSchema):
    order_id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    org_name = fields.String()
    beneficiary_group = fields.String()
    beneficiary = fields.String(allow_none=True, metadata={"description": "The name masked: \"王**\"."})
    activity_type = fields.String()
    deadline = fields.DateTime()
    places_left = fields.Integer()


class OpenOrders(StrictSchema):
    participant_id = fields.Integer()
    items = fields.List(fields.Nested(OpenOrderShown), metadata={"description": "Soonest deadline first."})


class ClaimCountShown(StrictSchema):
    participant_id = fields.Integer()
    name = fields.String()
    category = fields.String(metadata={"description": "unit or party_member."})
    employer = fields.String(allow_none=True, metadata={"description": "A party member's employer, who gets the yearly feedback."})
    claims = fields.Integer(metadata={"description": "Claims made in the year and not withdrawn."})
    completed = fields.Integer()
    overdue = fields.Integer()


class ClaimCounts(StrictSchema):
    org_id = fields.Integer()
    year = fields.Integer()
    items = fields.List(fields.Nested(ClaimCountShown))


class OverdueRunShown(StrictSchema):
    as_of = fields.Date()
    claims_overdue = fields.Integer()
    claims_penalised = fields.Integer(metadata={"description": "Overdue claims whose claimant paid points."})
    points_taken = fields.Integer()
    orders_expired = fields.Integer()
    orders_closed = fields.Integer()


def dump_step(step: Step) -> dict:
    return StepShown().dump(step_shown(step))


def order_step(order_id: int, service: Callable[..., Step], **arguments) -> Response:
    """Do ``service`` once per Idempotency-Key to an order the caller manages; answer with the step."""

    def work(principal, _key):
        order = order_to_act_on(order_id, Action.MANAGE_ORDERS)
        return service(db.session, actor=principal.user, order_id=order.id, **arguments)

    return idempotent_write(work, dump_step)


def claim_step(claim_id: int, action: Action, service: Callable[..., Step], **arguments) -> Response:
    """Do ``service`` once per Idempotency-Key to a claim the caller may do ``action`` on; answer with the step."""

    def work(principal, _key):
        claim = claim_to_act_on(claim_id, action)
        return service(db.session, actor=principal.user, claim_id=claim.id, **arguments)

    return idempotent_write(work, dump_step)


# Orders ------------------------------------------------------------------------------------


@orders.route("/orders")
class OrderList(MethodView):
    @orders.arguments(OrderQuery, location="query")
    @orders.response(200, OrderPage)
    def get(self, query):
        """List the orders you may see, soonest deadline first; drafts only where you run orders."""
        principal = current_principal()
        if "org_id" in query:
            roots = [object_in_scope(OrgNode, query["org_id"], Action.READ_ORDERS, field="org_id")]
        else:
            roots = reading_roots(principal)
        summaries = [
            summary
            for root in roots
            for summary in orders_by_state(db.session, root, query.get("state"))
            if query.get("kind", summary.order.kind) == summary.order.kind
            and (summary.state is not OrderState.DRAFT or runs_orders(principal, summary.order.org))
        ]
        summaries.sort(key=lambda summary: (summary.order.deadline, summary.order.id))
        size, page = query["page_size"], query["page"]
        return {
            "items": [
                order_shown(s.order, s.state, s.places_left, revealed=runs_orders(principal, s.order.org))
                for s in summaries[(page - 1) * size : page * size]
            ],
            "page": {"page": page, "page_size": size, "total": len(summaries)},
        }

    @orders.arguments(NewOrder)
    @orders.response(201, OrderDetail)
    @orders.alt_response(404, description="The org is outside your scope.")
    @orders.alt_response(422, description="An org that is not a community or grid, an activity type the rules lack, a deadline past.")
    def post(self, body):
        """Post a need, micro-wish or co-building project in a community or grid: a draft, or published at once."""

        def post(principal, key):
            org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_ORDERS, field="org_id")
            fields_given = {name: value for name, value in body.items() if name != "org_id"}
            order = post_order(db.session, actor=principal.user, org=org, idempotency_key=key, **fields_given)
            return details_shown(order_view(db.session, order.id))

        return idempotent_write(post, OrderDetail().dump)


@orders.route(f"/orders/{ORDER}")
class OneOrder(MethodView):
    @orders.response(200, OrderDetail)
    def get(self, order_id):
        """Show an order with its claims and its history; the beneficiary in full only to staff and claimants."""
        return details_shown(order_in_scope(order_id))


@orders.route(f"/orders/{ORDER}/publish")
class OrderPublication(MethodView):
    @orders.arguments(NoFields)
    @orders.response(201, StepShown)
    @orders.alt_response(409, description="The order is not a draft (the problem's detail names its state), or its deadline passed.")
    def post(self, _body, order_id):
        """Publish a draft so that claimants see it and may claim it."""

        return order_step(order_id, publish_order)


@orders.route(f"/orders/{ORDER}/cancel")
class OrderCancellation(MethodView):
    @orders.arguments(Reason)
    @orders.response(201, StepShown)
    @orders.alt_response(409, description="The order has ended, or part of it was confirmed.")
    def post(self, body, order_id):
        """Cancel an order, with the reason its claimants will read."""

        return order_step(order_id, cancel_order, reason=body["reason"])


@orders.route(f"/orders/{ORDER}/claims")
class OrderClaims(MethodView):
    @orders.arguments(ClaimRequest)
    @orders.response(201, StepShown)
    @orders.alt_response(404, description="The order, or the claimant, is not yours to see (a volunteer claims only for themselves).")
    @orders.alt_response(409, description="Every place is taken, or the order is not published.")
    def post(self, body, order_id):
        """Take a place on a published order: a volunteer for themselves, staff for a participant or team in scope.

        Claiming again while holding a place returns that claim.
        """

        def claim(principal, _key):
            order = order_in_scope(order_id).order
            if "team_id" in body:
                object_in_scope(
                    Team,
                    body["team_id"],
                    Action.CLAIM_ORDERS,
                    field="team_id",
                    org_of=lambda team: db.session.get(OrgNode, team.org_id),
                )
            else:
                participant_in_scope(body["participant_id"], Action.CLAIM_ORDERS, field="participant_id")
            principal.authorize(Action.CLAIM_ORDERS, order.org, participant_id=body.get("participant_id"))
            return claim_order(
                db.session,
                actor=principal.user,
                order_id=order.id,
                participant_id=body.get("participant_id"),
                team_id=body.get("team_id"),
            )

        return idempotent_write(claim, dump_step)


@orders.route("/orders/close-overdue")
class OverdueClosing(MethodView):
    @orders.arguments(OverdueRunRequest)
    @orders.response(201, OverdueRunShown)
    @orders.alt_response(403, description="Your roles do not manage orders over the whole tree.")
    def post(self, body):
        """Run the deadline job for a day: penalise claims not delivered in time and end those orders.

        It reaches every community, so it needs ``manage_orders`` over the whole tree. Running
        it again for the same day writes nothing more.
        """

        def run(principal, _key):
            require_deadline_job_rights(principal)
            return close_overdue(db.session, actor=principal.user, as_of=body["as_of"])

        return idempotent_write(run, OverdueRunShown().dump)


# Claims ------------------------------------------------------------------------------------


@orders.route(f"/order-claims/{CLAIM}/withdraw")
class ClaimWithdrawal(MethodView):
    @orders.arguments(NoFields)
    @orders.response(201, StepShown)
    @orders.alt_response(409, description="The claim is no longer awaiting delivery, or the deadline passed.")
    def post(self, _body, claim_id):
        """Give a place back before the deadline (a volunteer: their own); a unit gives back what claiming earned."""

        return claim_step(claim_id, Action.CLAIM_ORDERS, withdraw)


@orders.route(f"/order-claims/{CLAIM}/deliver")
class ClaimDelivery(MethodView):
    @orders.arguments(Delivery)
    @orders.response(201, StepShown)
    @orders.alt_response(409, description="The claim is not awaiting delivery, or the deadline passed.")
    def post(self, body, claim_id):
        """Report a claim delivered: what was done and when; a team names the members who served, a unit its staff."""

        return claim_step(claim_id, Action.CLAIM_ORDERS, deliver, **body)


@orders.route(f"/order-claims/{CLAIM}/confirm")
class ClaimConfirmation(MethodView):
    @orders.arguments(Confirmation)
    @orders.response(201, StepShown)
    @orders.alt_response(403, description="Your roles do not confirm orders here, or you took part in the delivery.")
    @orders.alt_response(409, description="The claim is not delivered (the detail names its state).")
    def post(self, body, claim_id):
        """Accept a delivery and post the points it earns, once: confirming again posts nothing more."""

        return claim_step(claim_id, Action.CONFIRM_ORDERS, confirm, rating=body["rating"])


@orders.route(f"/order-claims/{CLAIM}/reject")
class ClaimRejection(MethodView):
    @orders.arguments(Reason)
    @orders.response(201, StepShown)
    @orders.alt_response(403, description="Your roles do not confirm orders here, or you took part in the delivery.")
    @orders.alt_response(409, description="The claim is not delivered (the detail names its state).")
    def post(self, body, claim_id):
        """Send a delivery back with what is missing: the claim awaits delivery again."""

        return claim_step(claim_id, Action.CONFIRM_ORDERS, reject, reason=body["reason"])


# Reads for claimants and for the annual feedback ------------------------------------------


@orders.route(f"/participants/{PARTICIPANT}/open-orders")
class OpenOrdersNear(MethodView):
    @orders.response(200, OpenOrders)
    def get(self, participant_id):
        """List the orders a participant could claim now, in their grid and community; beneficiaries masked."""
        participant = participant_in_scope(participant_id, Action.READ_PARTICIPANTS, field="participant_id")
        current_principal().authorize(Action.READ_ORDERS, participant.org)
        return {"participant_id": participant.id, "items": open_orders_near(db.session, participant.id)}


@orders.route(f"/orgs/{ORG}/order-claim-counts")
class OrderClaimCounts(MethodView):
    @orders.arguments(YearQuery, location="query")
    @orders.response(200, ClaimCounts)
    def get(self, query, org_id):
        """Count each co-building unit's and party member's claims of a year, completed and overdue (staff only)."""
        org = object_in_scope(OrgNode, org_id, Action.READ_FULL_RANKINGS)
        return {"org_id": org.id, "year": query["year"], "items": claim_counts(db.session, org, query["year"])}
