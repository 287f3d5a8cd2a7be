"""Activities (服务记录): recording service, an event's sign-in sheet, self-reports, reviews, corrections.

Every activity is shown with what it earned: the scoring transaction's points, service
minutes and breakdown, and the breakdown's lines in the request's language, so a volunteer
can read on a phone why an entry is worth what it is. Whether a person belongs where the
service is recorded, whether times overlap, and what the rules allow are the recording
service's checks (:mod:`ledger.activities`); here a request is only parsed and authorized.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import selectinload

from ledger.activities import (
    DAY_MINUTES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EVENT_ATTENDEES,
    MAX_TAGS,
    Service,
    correct_activity,
    record_activity,
    report_own_service,
    review_report,
)
from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import GRANTS, Action, Principal
from ledger.api.problems import language
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.participants import participant_in_scope
from ledger.api.schemas import AwareDateTime, PageInfo, PageQuery, QueryWhole, StrictSchema, Whole, text
from ledger.db import db
from ledger.errors import NotFound
from ledger.events import Attendee, record_event
from ledger.models import (
    Activity,
    ActivityReview,
    ActivitySource,
    OrgNode,
    Participant,
    Role,
    Transaction,
    TransactionKindCode,
)
from ledger.rewards import explain_entry

activities = Blueprint(
    "activities",
    __name__,
    url_prefix="/api/v1",
    description="Service records (服务记录): one activity, an event's sign-in sheet, self-reports, reviews, corrections.",
)

#: Largest id of an ``Integer`` column (orgs, participants).
MAX_ID = 2**31 - 1
#: An activity's id in a path: a ``BigInteger``, so a larger number is no route at all (404), never a database error.
ACTIVITY_ID = f"<int(max={2**63 - 1}):activity_id>"
#: Largest quantity (persons sent, yuan donated) one activity records.
MAX_QUANTITY = 10**9
#: Days a list filter may name: any day of a record, and never one whose local midnight has no UTC moment.
FILTER_DAYS = validate.Range(dt.date(1900, 1, 1), dt.date(9999, 12, 30))


# --- What a request says ---------------------------------------------------------------------


class ServiceFields(StrictSchema):
    """What happened: the fields of one piece of service, named as the recording service names them."""

    activity_type = text(
        maximum=40, required=True, metadata={"description": "A code of the rule set's activity types."}
    )
    started_at = AwareDateTime(required=True)
    ended_at = AwareDateTime(required=True)
    travel_minutes = Whole(minimum=0, maximum=DAY_MINUTES)
    quantity = Whole(minimum=1, maximum=MAX_QUANTITY, allow_none=True)
    tags = fields.List(text(maximum=40), validate=validate.Length(max=MAX_TAGS))
    description = text(maximum=MAX_DESCRIPTION_LENGTH, allow_none=True)


class NewActivity(ServiceFields):
    #: Where the service happened: a street, community or grid.
    org_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    participant_id = Whole(minimum=1, maximum=MAX_ID, required=True)


class AttendeeLine(StrictSchema):
    """One line of a sign-in sheet; times left out are the event's."""

    participant_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    started_at = AwareDateTime()
    ended_at = AwareDateTime()
    travel_minutes = Whole(minimum=0, maximum=DAY_MINUTES)
    quantity = Whole(minimum=1, maximum=MAX_QUANTITY, allow_none=True)


class NewEvent(StrictSchema):
    org_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    title = text(maximum=200, required=True)
    activity_type = text(maximum=40, required=True)
    started_at = AwareDateTime(required=True)
    ended_at = AwareDateTime(required=True)
    attendees = fields.List(
        fields.Nested(AttendeeLine), required=True, validate=validate.Length(1, MAX_EVENT_ATTENDEES)
    )
    tags = fields.List(text(maximum=40), validate=validate.Length(max=MAX_TAGS))
    description = text(maximum=MAX_DESCRIPTION_LENGTH, allow_none=True)


class Review(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    #: Required to reject: the reporter reads it.
    reason = text(maximum=MAX_DESCRIPTION_LENGTH, allow_none=True, load_default=None)


class Correction(ServiceFields):
    """The fields that change, and why; a field left out keeps the corrected activity's value."""

    reason = text(maximum=MAX_DESCRIPTION_LENGTH, required=True)


#: A correction names only what changes.
CORRECTION = Correction(partial=("activity_type", "started_at", "ended_at"))


class ActivityQuery(PageQuery):
    """Filters of the activity list; ``from`` and ``to`` are local days of ``org_id``'s time zone."""

    org_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "This org and everything under it."})
    participant_id = QueryWhole(minimum=1, maximum=MAX_ID)
    activity_type = text(maximum=40)
    first_day = fields.Date(
        data_key="from", validate=FILTER_DAYS, metadata={"description": "Started on or after this day."}
    )
    last_day = fields.Date(
        data_key="to", validate=FILTER_DAYS, metadata={"description": "Started on or before this day."}
    )
    source = fields.String(validate=validate.OneOf([source.value for source in ActivitySource]))
    pending = fields.Boolean(metadata={"description": "true: only self-reports awaiting review; false: all others."})

    @validates_schema
    def _period_runs_forward(self, data, **_kwargs):
        if "first_day" in data and "last_day" in data and data["last_day"] < data["first_day"]:
            raise ValidationError("must not be before from", "to")


def _service_fields(body: dict) -> dict:
    """Return the fields of a request that describe service, as :class:`Service` takes them."""
    given = {field.name: body[field.name] for field in dataclasses.fields(Service) if field.name in body}
    if "tags" in given:
        given["tags"] = frozenset(given["tags"])
    return given


# --- What a response shows -------------------------------------------------------------------


class ReviewShown(StrictSchema):
    approved = fields.Boolean()
    reason = fields.String(allow_none=True)
    reviewed_by_id = fields.Integer()
    reviewed_at = fields.DateTime()


class ScoringShown(StrictSchema):
    transaction_id = fields.Integer()
    points = fields.Integer(metadata={"description": "Points credited to the participant."})
    service_minutes = fields.Integer(metadata={"description": "Verified service time it counted."})
    business_date = fields.Date()
    rule_set_version_id = fields.Integer(allow_none=True)
    breakdown = fields.Dict(metadata={"description": "Every step of the scoring, as the ledger recorded it."})
    explanation = fields.List(fields.String(), metadata={"description": "The breakdown in the request's language."})


class ActivityShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    participant_id = fields.Integer()
    participant_name = fields.String()
    activity_type = fields.String()
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    travel_minutes = fields.Integer()
    quantity = fields.Integer(allow_none=True)
    tags = fields.List(fields.String())
    description = fields.String(allow_none=True)
    source = fields.String()
    state = fields.String(
        metadata={"description": "pending (a self-report awaiting review), rejected, scored, or corrected (replaced)."}
    )
    event_id = fields.Integer(allow_none=True)
    recorded_by_id = fields.Integer()
    recorded_at = fields.DateTime()
    corrects_id = fields.Integer(allow_none=True)
    correction_reason = fields.String(allow_none=True)
    corrected_by_id = fields.Integer(allow_none=True)
    review = fields.Nested(ReviewShown, allow_none=True)
    #: ``None`` while a self-report waits for review, and for a rejected one.
    scoring = fields.Nested(ScoringShown, allow_none=True)


class ActivityPage(StrictSchema):
    items = fields.List(fields.Nested(ActivityShown))
    page = fields.Nested(PageInfo)


class EventShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    title = fields.String()
    activity_type = fields.String()
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    recorded_by_id = fields.Integer()
    recorded_at = fields.DateTime()


class RecordedEventShown(StrictSchema):
    event = fields.Nested(EventShown)
    activities = fields.List(fields.Nested(ActivityShown))


def shown(found: list[Activity]) -> list[dict]:
    """Return activities as responses show them.

    What they earned, their reviews, their corrections and their participants' names are found
    in one query each, so a page or an event's whole sheet costs four queries, not four a line.
    """
    ids = [activity.id for activity in found]
    scorings = {
        transaction.activity_id: transaction
        for transaction in db.session.execute(
            select(Transaction)
            .where(Transaction.activity_id.in_(ids), Transaction.kind == TransactionKindCode.EARN)
            .options(selectinload(Transaction.postings))
        ).scalars()
    }
    reviews = {
        review.activity_id: review
        for review in db.session.execute(select(ActivityReview).where(ActivityReview.activity_id.in_(ids))).scalars()
    }
    corrected_by = dict(
        db.session.execute(select(Activity.corrects_id, Activity.id).where(Activity.corrects_id.in_(ids))).all()
    )
    participant_ids = {activity.participant_id for activity in found}
    names = dict(
        db.session.execute(
            select(Participant.id, Participant.display_name).where(Participant.id.in_(participant_ids))
        ).all()
    )
    return [
        {
            **_recorded(activity),
            "participant_name": names[activity.participant_id],
            "state": _state(
                activity, reviews.get(activity.id), scorings.get(activity.id), corrected_by.get(activity.id)
            ),
            "corrected_by_id": corrected_by.get(activity.id),
            "review": reviews.get(activity.id),
            "scoring": _scoring_shown(scorings[activity.id]) if activity.id in scorings else None,
        }
        for activity in found
    ]


def _recorded(activity: Activity) -> dict:
    """Return what an activity records, field by field."""
    return {
        "id": activity.id,
        "org_id": activity.org_id,
        "participant_id": activity.participant_id,
        "activity_type": activity.activity_type,
        "started_at": activity.started_at,
        "ended_at": activity.ended_at,
        "travel_minutes": activity.travel_minutes,
        "quantity": activity.quantity,
        "tags": activity.tags,
        "description": activity.description,
        "source": activity.source,
        "event_id": activity.event_id,
        "recorded_by_id": activity.recorded_by_id,
        "recorded_at": activity.recorded_at,
        "corrects_id": activity.corrects_id,
        "correction_reason": activity.correction_reason,
    }


def _state(
    activity: Activity, review: ActivityReview | None, scoring: Transaction | None, corrected_by_id: int | None
) -> str:
    """Say where an activity stands: replaced by a correction, rejected, awaiting review, or scored."""
    if corrected_by_id is not None:
        return "corrected"
    if review is not None and not review.approved:
        return "rejected"
    return "pending" if scoring is None else "scored"


def _scoring_shown(transaction: Transaction) -> dict:
    return {
        "transaction_id": transaction.id,
        "points": sum(
            posting.amount for posting in transaction.postings if posting.account_id == transaction.subject_account_id
        ),
        "service_minutes": transaction.service_minutes,
        "business_date": transaction.business_date,
        "rule_set_version_id": transaction.rule_set_version_id,
        "breakdown": transaction.breakdown,
        "explanation": explain_entry(transaction.kind, transaction.breakdown, language()),
    }


def _one_shown(activity: Activity) -> dict:
    return ActivityShown().dump(shown([activity])[0])


# --- Who may act on what ---------------------------------------------------------------------


def _participant_to_record(participant_id: int, *, field: str) -> Participant:
    """Return a participant the caller may record service for: one of their own scope, else not found.

    The recording service refuses a participant who belongs elsewhere by name; checking scope
    first keeps names outside the caller's scope from showing.
    """
    try:
        return participant_in_scope(participant_id, Action.RECORD_SERVICE, field=field)
    except NotFound as refusal:
        refusal.field = field
        raise


def _activity_to_act_on(activity_id: int, action: Action) -> Activity:
    """Return an activity the caller may see and do ``action`` on.

    Seeing is checked first, so another volunteer's activity is not found rather than forbidden.
    """
    activity = object_in_scope(Activity, activity_id, Action.READ_LEDGER)
    current_principal().authorize(action, activity.org, participant_id=activity.participant_id)
    return activity


def _visible(principal: Principal):
    """Return the condition on activities (joined with their org) that READ_LEDGER allows the caller.

    The policy's rule as a filter: an activity in the subtree of a role that grants reading the
    ledger, and for a volunteer's role only their own.
    """
    allowed = []
    for grant in principal.grants:
        if Action.READ_LEDGER not in GRANTS[grant.role]:
            continue
        where = true() if grant.path is None else OrgNode.path.startswith(grant.path)
        if grant.role is Role.VOLUNTEER:
            where = and_(where, Activity.participant_id == principal.user.participant_id)
        allowed.append(where)
    return or_(false(), *allowed)


def _local_midnight(day: dt.date, time_zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(time_zone))


# --- Routes ----------------------------------------------------------------------------------


@activities.route("/activities")
class ActivityList(MethodView):
    @activities.arguments(ActivityQuery, location="query")
    @activities.response(200, ActivityPage)
    def get(self, query):
        """List activities, newest first: staff see their scope, a volunteer only their own."""
        statement = (
            select(Activity)
            .join(OrgNode, OrgNode.id == Activity.org_id)
            .where(_visible(current_principal()))
            .order_by(Activity.started_at.desc(), Activity.id.desc())
        )
        time_zone = current_app.config["LEDGER_DEFAULT_TIME_ZONE"]
        if "org_id" in query:
            org = object_in_scope(OrgNode, query["org_id"], Action.READ_ORGS, field="org_id")
            statement = statement.where(OrgNode.path.startswith(org.path))
            time_zone = org.time_zone
        if "participant_id" in query:
            participant_in_scope(query["participant_id"], Action.READ_LEDGER, field="participant_id")
            statement = statement.where(Activity.participant_id == query["participant_id"])
        if "activity_type" in query:
            statement = statement.where(Activity.activity_type == query["activity_type"])
        if "first_day" in query:
            statement = statement.where(Activity.started_at >= _local_midnight(query["first_day"], time_zone))
        if "last_day" in query:
            after = query["last_day"] + dt.timedelta(days=1)
            statement = statement.where(Activity.started_at < _local_midnight(after, time_zone))
        if "source" in query:
            statement = statement.where(Activity.source == query["source"])
        if "pending" in query:
            pending = and_(Activity.source == ActivitySource.SELF_REPORT, ~Activity.review.has())
            statement = statement.where(pending if query["pending"] else ~pending)
        page = page_of(statement, query)
        return {"items": shown(page["items"]), "page": page["page"]}

    @activities.arguments(NewActivity)
    @activities.response(201, ActivityShown)
    @activities.alt_response(403, description="Your roles do not record service here, or you named yourself.")
    @activities.alt_response(404, description="The org or the participant is outside your scope.")
    def post(self, body):
        """Record one participant's service, scored at once under the rules in force on its day."""

        def record(principal, key):
            org = object_in_scope(OrgNode, body["org_id"], Action.RECORD_SERVICE, field="org_id")
            _participant_to_record(body["participant_id"], field="participant_id")
            service = Service(**_service_fields(body))
            return record_activity(
                db.session, actor=principal.user, org=org, service=service, idempotency_key=key
            ).activity

        return idempotent_write(record, _one_shown)


@activities.route("/activities/self-reports")
class SelfReportList(MethodView):
    @activities.arguments(NewActivity)
    @activities.response(201, ActivityShown)
    @activities.alt_response(404, description="Someone else's participant, or an org outside your scope.")
    def post(self, body):
        """Report your own service; it earns once another staff member approves it."""

        def report(principal, key):
            org = object_in_scope(OrgNode, body["org_id"], Action.READ_ORGS, field="org_id")
            principal.authorize(Action.REPORT_OWN_SERVICE, org, participant_id=body["participant_id"])
            service = Service(**_service_fields(body))
            return report_own_service(
                db.session, actor=principal.user, org=org, service=service, idempotency_key=key
            ).activity

        return idempotent_write(report, _one_shown)


@activities.route(f"/activities/{ACTIVITY_ID}")
class ActivityById(MethodView):
    @activities.response(200, ActivityShown)
    def get(self, activity_id):
        """Show one activity with its review and what it earned, explained."""
        return shown([object_in_scope(Activity, activity_id, Action.READ_LEDGER)])[0]


@activities.route(f"/activities/{ACTIVITY_ID}/review")
class ReviewOfActivity(MethodView):
    @activities.arguments(Review)
    @activities.response(201, ActivityShown)
    @activities.alt_response(403, description="Your roles do not review here, or the report is your own.")
    @activities.alt_response(409, description="The report was already reviewed the other way, or corrected.")
    def post(self, body, activity_id):
        """Approve a self-report (it is scored at once) or reject it with a reason the reporter reads."""

        def review(principal, _key):
            activity = _activity_to_act_on(activity_id, Action.REVIEW_REPORTS)
            return review_report(
                db.session,
                actor=principal.user,
                activity_id=activity.id,
                approve=body["decision"] == "approve",
                reason=body["reason"],
            ).activity

        return idempotent_write(review, _one_shown)


@activities.route(f"/activities/{ACTIVITY_ID}/correction")
class CorrectionOfActivity(MethodView):
    @activities.arguments(CORRECTION)
    @activities.response(201, ActivityShown)
    @activities.alt_response(409, description="Already corrected, still awaiting review, or rejected.")
    def post(self, body, activity_id):
        """Correct an activity: its points are reversed and the corrected activity is scored anew."""

        def correct(principal, key):
            original = _activity_to_act_on(activity_id, Action.CORRECT)
            return correct_activity(
                db.session,
                actor=principal.user,
                activity_id=original.id,
                service=dataclasses.replace(Service.of(original), **_service_fields(body)),
                reason=body["reason"],
                idempotency_key=key,
            ).activity

        return idempotent_write(correct, _one_shown)


@activities.route("/events")
class EventList(MethodView):
    @activities.arguments(NewEvent)
    @activities.response(201, RecordedEventShown)
    @activities.alt_response(404, description="The org, or an attendee, is outside your scope.")
    @activities.alt_response(422, description="A refused line names itself: attendees[3].started_at.")
    def post(self, body):
        """Record an event's whole sign-in sheet: every line is recorded, or on any refusal none."""

        def record(principal, key):
            org = object_in_scope(OrgNode, body["org_id"], Action.RECORD_SERVICE, field="org_id")
            for index, line in enumerate(body["attendees"]):
                _participant_to_record(line["participant_id"], field=f"attendees[{index}].participant_id")
            recorded = record_event(
                db.session,
                actor=principal.user,
                org=org,
                title=body["title"],
                activity_type=body["activity_type"],
                started_at=body["started_at"],
                ended_at=body["ended_at"],
                attendees=[Attendee(**line) for line in body["attendees"]],
                idempotency_key=key,
                tags=body.get("tags", ()),
                description=body.get("description"),
            )
            return {"event": recorded.event, "activities": shown([line.activity for line in recorded.activities])}

        return idempotent_write(record, RecordedEventShown().dump)
