"""The reward shelf (爱心超市): rewards and their stock, donations, redemptions and the liability view.

The shelf service (:mod:`ledger.shelf`) keeps the rules: a redemption is refused, before
anything is written, naming what is short (points, stock, the per-person limit or the star
level, each a 409); a cancellation refunds the points by a reversal and returns the stock.
Here a request is parsed and authorized:

* an org's shelf serves the participants of its subtree, so a participant's catalogue holds
  the rewards of their own org and of every org above it; running a shelf (adding rewards,
  restocking, recording donations, handing over and cancelling redemptions) is for those who
  manage the shelf of the reward's own org;
* a redemption is its participant's record: a volunteer redeems for themselves and sees only
  their own; staff redeem for, and see, the participants of their scope. A reward no shelf
  above the participant offers is not found for them.
"""

from __future__ import annotations

from typing import Callable

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate
from sqlalchemy import and_, or_, select

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.activities import ActivityShown, shown
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.ledger import reading_scopes
from ledger.api.resources.participants import MAX_ID, in_subtrees, participant_in_scope, reference
from ledger.api.resources.standings import ORG
from ledger.api.schemas import AwareDateTime, NoFields, PageInfo, PageQuery, QueryWhole, StrictSchema, Whole, text
from ledger.db import db
from ledger.errors import NotFound
from ledger.models import LimitPeriod, OrgNode, Participant, Redemption, RedemptionStatus, Reward, RewardKind, utc_now
from ledger.orgs import MAX_NAME_LENGTH, local_date
from ledger.shelf import (
    MAX_DESCRIPTION_LENGTH,
    MAX_PRICE_POINTS,
    MAX_QUANTITY,
    MAX_STAR_LEVEL,
    MAX_STOCK,
    MAX_YUAN,
    add_reward,
    cancel,
    catalogue,
    donate_stock,
    fulfil,
    liability,
    priority_holders,
    redeem,
    restock,
)

rewards = Blueprint(
    "rewards",
    __name__,
    url_prefix="/api/v1",
    description="The reward shelf (爱心超市): rewards, stock and donations; redemptions; the points liability.",
)

REWARD = f"<int(min=1, max={MAX_ID}):reward_id>"
#: Redemptions have BIGINT ids: a larger number is no route at all (404).
REDEMPTION = f"<int(min=1, max={2**63 - 1}):redemption_id>"


# Finding what the caller may act on ---------------------------------------------------------


def reward_to_run(reward_id: int) -> Reward:
    """Return a reward whose shelf the caller runs: the reward's own org must be in their scope."""
    return object_in_scope(Reward, reward_id, Action.MANAGE_SHELF, field="reward_id")


def reward_offered_to(reward_id: int, participant: Participant) -> Reward:
    """Return a reward of a shelf that serves ``participant`` (their org's or one above); else not found."""
    reward = db.session.get(Reward, reward_id)
    if reward is None or not participant.org.path.startswith(reward.org.path):
        raise NotFound(f"reward {reward_id} is not on any shelf that serves {participant.display_name}", field="reward_id")
    return reward


def redemption_to_act_on(redemption_id: int, action: Action) -> Redemption:
    """Return a redemption the caller may see (its participant's record) and whose shelf they may do ``action`` on."""
    redemption = object_in_scope(
        Redemption,
        redemption_id,
        Action.READ_LEDGER,
        field="redemption_id",
        org_of=lambda found: found.participant.org,
    )
    current_principal().authorize(action, redemption.reward.org)
    return redemption


# Schemas -----------------------------------------------------------------------------------


class NewReward(StrictSchema):
    name = text(maximum=MAX_NAME_LENGTH, required=True)
    kind = fields.String(
        load_default=RewardKind.GOODS.value,
        validate=validate.OneOf([kind.value for kind in RewardKind]),
        metadata={"description": "goods, service, or priority (for a community service: welfare linkage)."},
    )
    price_points = Whole(
        minimum=1, maximum=MAX_PRICE_POINTS, required=True, metadata={"description": "Points per unit; never changes."}
    )
    active_from = fields.Date(metadata={"description": "First day offered (default: today in the org's time zone)."})
    active_to = fields.Date(load_default=None, allow_none=True, metadata={"description": "Last day offered (null: open)."})
    stock = Whole(
        minimum=0, maximum=MAX_STOCK, load_default=None, allow_none=True, metadata={"description": "Units (null: unlimited)."}
    )
    unit_value_yuan = Whole(
        minimum=0, maximum=MAX_YUAN, load_default=None, allow_none=True, metadata={"description": "For the liability view."}
    )
    per_person_limit = Whole(minimum=1, maximum=MAX_STOCK, load_default=None, allow_none=True)
    limit_period = fields.String(
        load_default=LimitPeriod.EVER.value, validate=validate.OneOf([period.value for period in LimitPeriod])
    )
    min_star_level = Whole(minimum=0, maximum=MAX_STAR_LEVEL, load_default=0)
    description = text(maximum=MAX_DESCRIPTION_LENGTH, load_default=None, allow_none=True)


class CatalogueQuery(StrictSchema):
    on = fields.Date(metadata={"description": "The day (default: today in the org's time zone)."})


class Restock(StrictSchema):
    quantity = Whole(minimum=1, maximum=MAX_STOCK, required=True)


class NewDonation(StrictSchema):
    unit_participant_id = reference(required=True, metadata={"description": "The co-building unit that gave the stock."})
    quantity = Whole(minimum=1, maximum=MAX_STOCK, required=True)
    value_yuan = Whole(minimum=1, maximum=MAX_YUAN, required=True, metadata={"description": "What the gift is worth; it scores the unit."})
    handed_over_from = AwareDateTime(required=True)
    handed_over_until = AwareDateTime(required=True)


class NewRedemption(StrictSchema):
    participant_id = reference(required=True, metadata={"description": "Who spends the points (a volunteer: themselves)."})
    quantity = Whole(minimum=1, maximum=MAX_QUANTITY, load_default=1)


class Cancellation(StrictSchema):
    reason = text(maximum=MAX_DESCRIPTION_LENGTH, required=True, metadata={"description": "Kept as the refund's memo."})


class RedemptionQuery(PageQuery):
    org_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "Only participants of this org's subtree."})
    participant_id = QueryWhole(minimum=1, maximum=MAX_ID)
    reward_id = QueryWhole(minimum=1, maximum=MAX_ID)
    status = fields.String(validate=validate.OneOf([status.value for status in RedemptionStatus]))


class RewardShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer(metadata={"description": "The org whose shelf offers it."})
    org_name = fields.String(attribute="org.name")
    name = fields.String()
    description = fields.String(allow_none=True)
    kind = fields.String()
    price_points = fields.Integer()
    stock = fields.Integer(allow_none=True, metadata={"description": "Units left; null for unlimited."})
    unit_value_yuan = fields.Integer(allow_none=True)
    per_person_limit = fields.Integer(allow_none=True)
    limit_period = fields.String()
    min_star_level = fields.Integer()
    active_from = fields.Date()
    active_to = fields.Date(allow_none=True)
    created_at = fields.DateTime()


class Catalogue(StrictSchema):
    org_id = fields.Integer()
    on = fields.Date()
    items = fields.List(fields.Nested(RewardShown), metadata={"description": "Cheapest first; sold-out ones with stock 0."})


class DonationShown(StrictSchema):
    reward = fields.Nested(RewardShown)
    activity = fields.Nested(ActivityShown, metadata={"description": "The unit's donation and what it earned."})


class RedemptionShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer(metadata={"description": "The shelf's org, in whose books the points were spent."})
    reward_id = fields.Integer()
    reward_name = fields.String(attribute="reward.name")
    participant_id = fields.Integer()
    participant_name = fields.String(attribute="participant.display_name")
    quantity = fields.Integer()
    points = fields.Integer()
    status = fields.String(metadata={"description": "requested, fulfilled (handed over) or cancelled (refunded)."})
    transaction_id = fields.Integer(metadata={"description": "The redeem transaction that spent the points."})
    requested_on = fields.Date()
    requested_at = fields.DateTime()
    requested_by_id = fields.Integer()
    fulfilled_at = fields.DateTime(allow_none=True)
    fulfilled_by_id = fields.Integer(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancelled_by_id = fields.Integer(allow_none=True)
    cancel_reason = fields.String(allow_none=True)


class RedemptionPage(StrictSchema):
    items = fields.List(fields.Nested(RedemptionShown))
    page = fields.Nested(PageInfo)


class LiabilityShown(StrictSchema):
    org_id = fields.Integer(attribute="org.id")
    points_outstanding = fields.Integer(metadata={"description": "Points the subtree's participants hold."})
    stock_points = fields.Integer(metadata={"description": "Points the stock on the subtree's shelves would absorb."})
    stock_yuan = fields.Integer(metadata={"description": "What that stock is worth, where its value is known."})
    unlimited_rewards = fields.Integer()
    unvalued_rewards = fields.Integer()
    coverage_percent = fields.Integer(allow_none=True, metadata={"description": "stock_points as a percentage of points_outstanding."})


class PriorityHolderShown(StrictSchema):
    redemption_id = fields.Integer()
    participant_id = fields.Integer()
    display_name = fields.String()
    quantity = fields.Integer()
    status = fields.String()
    requested_on = fields.Date()


class PriorityHolders(StrictSchema):
    reward_id = fields.Integer()
    items = fields.List(fields.Nested(PriorityHolderShown), metadata={"description": "First redeemed first."})


_dump_reward = RewardShown().dump
_dump_redemption = RedemptionShown().dump


def settle_redemption(redemption_id: int, service: Callable[..., Redemption], **arguments) -> Response:
    """Settle a redemption with ``service`` (hand it over, or cancel it) once per Idempotency-Key, as its shelf's staff."""

    def work(principal, _key):
        redemption = redemption_to_act_on(redemption_id, Action.MANAGE_SHELF)
        return service(db.session, actor=principal.user, redemption_id=redemption.id, **arguments)

    return idempotent_write(work, _dump_redemption)


# Rewards -----------------------------------------------------------------------------------


@rewards.route(f"/orgs/{ORG}/rewards")
class OrgRewards(MethodView):
    @rewards.arguments(CatalogueQuery, location="query")
    @rewards.response(200, Catalogue)
    def get(self, query, org_id):
        """List the rewards offered on a day to an org's participants: its shelf's and those above it."""
        org = object_in_scope(OrgNode, org_id, Action.READ_SHELF)
        day = query.get("on") or local_date(utc_now(), org)
        return {"org_id": org.id, "on": day, "items": catalogue(db.session, org, on=day)}

    @rewards.arguments(NewReward)
    @rewards.response(201, RewardShown)
    @rewards.alt_response(409, description="The shelf already offers a reward of this name.")
    def post(self, body, org_id):
        """Offer a reward on an org's shelf; an initial stock is recorded as a stock movement."""

        def offer(principal, _key):
            org = object_in_scope(OrgNode, org_id, Action.MANAGE_SHELF)
            terms = {"active_from": local_date(utc_now(), org), **body}
            return add_reward(db.session, actor=principal.user, org=org, **terms)

        return idempotent_write(offer, _dump_reward)


@rewards.route(f"/rewards/{REWARD}/restock")
class RewardRestock(MethodView):
    @rewards.arguments(Restock)
    @rewards.response(201, RewardShown)
    @rewards.alt_response(422, description="The reward's stock is unlimited, or would grow past the most a shelf holds.")
    def post(self, body, reward_id):
        """Add units bought or found for the shelf to a reward's stock."""

        def add(principal, _key):
            reward = reward_to_run(reward_id)
            restock(db.session, actor=principal.user, reward_id=reward.id, quantity=body["quantity"])
            return reward

        return idempotent_write(add, _dump_reward)


@rewards.route(f"/rewards/{REWARD}/donations")
class RewardDonations(MethodView):
    @rewards.arguments(NewDonation)
    @rewards.response(201, DonationShown)
    @rewards.alt_response(422, description="The donor is not a co-building unit the shelf serves, or the stock is unlimited.")
    def post(self, body, reward_id):
        """Record stock a co-building unit gave: the stock grows and the unit earns its donation's points."""

        def donate(principal, key):
            reward = reward_to_run(reward_id)
            participant_in_scope(body["unit_participant_id"], Action.READ_PARTICIPANTS, field="unit_participant_id")
            donation = donate_stock(
                db.session,
                actor=principal.user,
                reward_id=reward.id,
                unit_participant_id=body["unit_participant_id"],
                quantity=body["quantity"],
                value_yuan=body["value_yuan"],
                handed_over_at=(body["handed_over_from"], body["handed_over_until"]),
                idempotency_key=key,
            )
            return {"reward": donation.reward, "activity": shown([donation.recorded.activity])[0]}

        return idempotent_write(donate, DonationShown().dump)


@rewards.route(f"/rewards/{REWARD}/priority-holders")
class RewardPriorityHolders(MethodView):
    @rewards.response(200, PriorityHolders)
    def get(self, reward_id):
        """List who holds a priority reward, first redeemed first (staff: it names people)."""
        reward = object_in_scope(Reward, reward_id, Action.READ_PARTICIPANTS, field="reward_id")
        return {"reward_id": reward.id, "items": priority_holders(db.session, reward.id)}


# Redemptions -------------------------------------------------------------------------------


@rewards.route(f"/rewards/{REWARD}/redemptions")
class RewardRedemptions(MethodView):
    @rewards.arguments(NewRedemption)
    @rewards.response(201, RedemptionShown)
    @rewards.alt_response(404, description="The participant is not yours to redeem for, or no shelf serving them offers the reward.")
    @rewards.alt_response(409, description="Points, stock, the per-person limit or the star level is short, or the reward is not offered today.")
    def post(self, body, reward_id):
        """Spend a participant's points on a reward (a volunteer: their own); refused naming what is short."""

        def spend(principal, key):
            participant = participant_in_scope(body["participant_id"], Action.REDEEM, field="participant_id")
            reward = reward_offered_to(reward_id, participant)
            return redeem(
                db.session,
                actor=principal.user,
                participant_id=participant.id,
                reward_id=reward.id,
                quantity=body["quantity"],
                idempotency_key=key,
            ).redemption

        return idempotent_write(spend, _dump_redemption)


@rewards.route("/redemptions")
class Redemptions(MethodView):
    @rewards.arguments(RedemptionQuery, location="query")
    @rewards.response(200, RedemptionPage)
    def get(self, query):
        """List the redemptions you may see, newest first: staff those of their scope's participants, a volunteer their own."""
        principal = current_principal()
        everyone, own = reading_scopes(principal, Action.READ_LEDGER)
        visible = in_subtrees(everyone)
        if own and principal.user.participant_id is not None:
            visible = or_(visible, and_(in_subtrees(own), Redemption.participant_id == principal.user.participant_id))
        statement = (
            select(Redemption)
            .join(Participant, Participant.id == Redemption.participant_id)
            .join(OrgNode, OrgNode.id == Participant.org_id)
            .where(visible)
            .order_by(Redemption.id.desc())
        )
        if "org_id" in query:
            org = object_in_scope(OrgNode, query["org_id"], Action.READ_ORGS, field="org_id")
            statement = statement.where(OrgNode.path.startswith(org.path))
        if "participant_id" in query:
            participant_in_scope(query["participant_id"], Action.READ_LEDGER, field="participant_id")
            statement = statement.where(Redemption.participant_id == query["participant_id"])
        if "reward_id" in query:
            statement = statement.where(Redemption.reward_id == query["reward_id"])
        if "status" in query:
            statement = statement.where(Redemption.status == query["status"])
        return page_of(statement, query)


@rewards.route(f"/redemptions/{REDEMPTION}/fulfil")
class RedemptionFulfilment(MethodView):
    @rewards.arguments(NoFields)
    @rewards.response(201, RedemptionShown)
    @rewards.alt_response(409, description="The redemption was already fulfilled or cancelled.")
    def post(self, _body, redemption_id):
        """Mark a requested redemption as handed over (or, for a priority, granted)."""

        return settle_redemption(redemption_id, fulfil)


@rewards.route(f"/redemptions/{REDEMPTION}/cancel")
class RedemptionCancellation(MethodView):
    @rewards.arguments(Cancellation)
    @rewards.response(201, RedemptionShown)
    @rewards.alt_response(409, description="The redemption was already fulfilled or cancelled, or the refund's points were spent.")
    def post(self, body, redemption_id):
        """Cancel a requested redemption: its points come back by a reversal, its stock to the shelf."""

        return settle_redemption(redemption_id, cancel, reason=body["reason"])


@rewards.route(f"/orgs/{ORG}/reward-liability")
class RewardLiability(MethodView):
    @rewards.response(200, LiabilityShown)
    def get(self, org_id):
        """Show the points an org's participants hold against what the stock on its shelves can absorb."""
        org = object_in_scope(OrgNode, org_id, Action.READ_LEDGER)
        return liability(db.session, org)
