"""Rule sets (积分规则): validate a document, keep drafts, publish versions, and simulate a change.

A rule document travels as text (YAML or JSON) in a JSON body, as staff write it. Validating
and simulating write nothing: they are POSTs only because documents are long, and so they take
no Idempotency-Key. Drafts, publishing and document changes write, and need one. Simulation
shows per-person numbers, so it needs the right to manage the org's rules.
"""

from __future__ import annotations

from contextlib import contextmanager

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write, takes_no_idempotency_key
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.resources.participants import Flag
from ledger.api.schemas import PageInfo, PageQuery, StrictSchema, Whole
from ledger.db import db
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.models import OrgNode, RuleSetVersion, utc_now
from ledger.orgs import local_date
from ledger.rules import create_draft, publish, publish_document, rules_of, update_draft, version_in_force
from ledger.ruleset_schema import MAX_DOCUMENT_CHARS, READERS, parse_rule_set
from ledger.simulate import MAX_PERIOD, SimulationReport, simulate

rule_sets = Blueprint(
    "rule_sets",
    __name__,
    url_prefix="/api/v1",
    description="Scoring rules (积分规则): validation, drafts, published versions, the version in force, simulation.",
)

#: Largest id of an ``Integer`` column (orgs, rule-set versions): a larger one in a path is no route (404).
MAX_ID = 2**31 - 1
VERSION_ID = f"<int(max={MAX_ID}):version_id>"
ORG_ID = f"<int(max={MAX_ID}):org_id>"


def document_field(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(1, MAX_DOCUMENT_CHARS),
        metadata={"description": "The rule document as text, as docs/rules.md describes it."},
        **kwargs,
    )


def format_field() -> fields.String:
    return fields.String(load_default="yaml", validate=validate.OneOf(sorted(READERS)))


class RuleDocument(StrictSchema):
    document = document_field(required=True)
    format = format_field()


class NewRuleSet(RuleDocument):
    publish = Flag(load_default=False, metadata={"description": "Publish at once instead of keeping a draft."})


class SimulationRequest(StrictSchema):
    """What to compare: a stored version (``draft_id``) or a document, over a past period of at most a year."""

    org_id = Whole(minimum=1, maximum=MAX_ID, required=True)
    draft_id = Whole(minimum=1, maximum=MAX_ID)
    document = document_field()
    format = format_field()
    start = fields.Date(data_key="from", required=True)
    end = fields.Date(data_key="to", required=True)

    @validates_schema
    def _one_draft_over_one_period(self, data, **_kwargs):
        if ("draft_id" in data) == ("document" in data):
            raise ValidationError("give either draft_id or document", "draft_id")
        if "start" in data and "end" in data:
            if data["end"] < data["start"]:
                raise ValidationError("must not be before from", "to")
            if data["end"] - data["start"] > MAX_PERIOD:
                raise ValidationError(f"a simulation covers at most {MAX_PERIOD.days} days", "to")


class NothingMore(StrictSchema):
    """No body, or an empty one: publishing takes nothing but the version, and refuses anything smuggled in."""


class InForceQuery(StrictSchema):
    on = fields.Date(metadata={"description": "The day; today in the org's time zone if left out."})


class Validated(StrictSchema):
    ok = fields.Boolean()
    name = fields.String()
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    activity_types = fields.List(fields.String(), metadata={"description": "The codes of its activity types."})


class RuleSetShown(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    version = fields.Integer()
    name = fields.String()
    status = fields.String()
    digest = fields.String(metadata={"description": "SHA-256 of the canonical document, as breakdowns record it."})
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    created_by_id = fields.Integer()
    created_at = fields.DateTime()
    published_by_id = fields.Integer(allow_none=True)
    published_at = fields.DateTime(allow_none=True)


class RuleSetWithDocument(RuleSetShown):
    document = fields.Dict(metadata={"description": "The canonical document: every key written out."})


class RuleSetPage(StrictSchema):
    items = fields.List(fields.Nested(RuleSetShown))
    page = fields.Nested(PageInfo)


class OutcomeShown(StrictSchema):
    points = fields.Integer()
    service_minutes = fields.Integer()
    activities = fields.Integer()
    stars = fields.Integer()
    rank = fields.Integer()
    titles = fields.List(fields.String())


class ParticipantChangeShown(StrictSchema):
    participant_id = fields.Integer()
    name = fields.String()
    changed = fields.Boolean()
    before = fields.Nested(OutcomeShown)
    after = fields.Nested(OutcomeShown)


class SimulationShown(StrictSchema):
    org_id = fields.Integer()
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    draft_name = fields.String()
    activities = fields.Integer(metadata={"description": "Scored activities of the period, all scored again."})
    points_before = fields.Integer()
    points_after = fields.Integer()
    participants = fields.List(fields.Nested(ParticipantChangeShown), metadata={"description": "Changed first."})


def simulation_shown(report: SimulationReport) -> dict:
    points_before, points_after = report.totals()
    return {
        "org_id": report.org.id,
        "start": report.start,
        "end": report.end,
        "draft_name": report.draft_name,
        "activities": report.activities,
        "points_before": points_before,
        "points_after": points_after,
        "participants": [
            {
                "participant_id": change.participant_id,
                "name": change.name,
                "changed": change.changed,
                "before": {**vars(change.before), "titles": sorted(change.before.titles)},
                "after": {**vars(change.after), "titles": sorted(change.after.titles)},
            }
            for change in report.participants
        ],
    }


@contextmanager
def field_named(name: str, refusal_type: type[LedgerError]):
    """Name this request's field in a refusal the service raises under its own argument's name."""
    try:
        yield
    except refusal_type as refusal:
        refusal.field = name
        raise


@rule_sets.route("/rule-sets/validate")
class Validation(MethodView):
    @rule_sets.arguments(RuleDocument)
    @rule_sets.response(200, Validated)
    @rule_sets.alt_response(422, description="Every problem of the document at once, by dotted path.")
    @takes_no_idempotency_key
    def post(self, body):
        """Check a rule document, reporting every problem at once.

        Validation writes nothing, so it takes no Idempotency-Key: it is a POST only because
        documents are long. Anyone signed in may validate.
        """
        current_principal()  # signed in, nothing more
        rules = parse_rule_set(body["document"], format=body["format"])
        return {
            "ok": True,
            "name": rules.name,
            "effective_from": rules.effective_from,
            "effective_to": rules.effective_to,
            "activity_types": sorted(rules.activity_types),
        }


@rule_sets.route("/rule-sets/simulate")
class Simulation(MethodView):
    @rule_sets.arguments(SimulationRequest)
    @rule_sets.response(200, SimulationShown)
    @rule_sets.alt_response(422, description="An invalid document, or a period backwards or over a year.")
    @takes_no_idempotency_key
    def post(self, body):
        """Score a past period again under a draft and compare, person by person.

        Simulation writes nothing, so it takes no Idempotency-Key. It shows each person's
        numbers, so it needs the right to manage the org's rules.
        """
        org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_RULES, field="org_id")
        if "draft_id" in body:
            version = object_in_scope(RuleSetVersion, body["draft_id"], Action.MANAGE_RULES, field="draft_id")
            draft, name, draft_field = rules_of(version), f"{version.name} (v{version.version})", "draft_id"
        else:
            draft = parse_rule_set(body["document"], format=body["format"])
            name, draft_field = draft.name, "document"
        # No rules in force at the period's end is about the period; a service the draft cannot score, about the draft.
        with field_named("to", NotFound), field_named(draft_field, InvalidInput):
            report = simulate(db.session, org=org, draft=draft, draft_name=name, start=body["start"], end=body["end"])
        return simulation_shown(report)


@rule_sets.route(f"/orgs/{ORG_ID}/rule-sets")
class OrgRuleSets(MethodView):
    @rule_sets.arguments(PageQuery, location="query")
    @rule_sets.response(200, RuleSetPage)
    def get(self, query, org_id):
        """List the versions of an org's own rule set, newest first."""
        org = object_in_scope(OrgNode, org_id, Action.READ_RULES)
        statement = (
            select(RuleSetVersion).where(RuleSetVersion.org_id == org.id).order_by(RuleSetVersion.version.desc())
        )
        return page_of(statement, query)

    @rule_sets.arguments(NewRuleSet)
    @rule_sets.response(201, RuleSetWithDocument)
    @rule_sets.alt_response(422, description="Every problem of the document at once, by dotted path.")
    def post(self, body, org_id):
        """Store a rule document as the org's next version: a draft, or published at once."""

        def create(principal, _key):
            org = object_in_scope(OrgNode, org_id, Action.MANAGE_RULES)
            store = publish_document if body["publish"] else create_draft
            return store(db.session, actor=principal.user, org=org, text=body["document"], format=body["format"])

        return idempotent_write(create, RuleSetWithDocument().dump)


@rule_sets.route(f"/orgs/{ORG_ID}/rule-sets/in-force")
class RuleSetInForce(MethodView):
    @rule_sets.arguments(InForceQuery, location="query")
    @rule_sets.response(200, RuleSetWithDocument)
    @rule_sets.alt_response(404, description="No published version covers the day here or above.")
    def get(self, query, org_id):
        """Show the version that scores service done in the org on a day: its own, or inherited from above."""
        org = object_in_scope(OrgNode, org_id, Action.READ_RULES)
        with field_named("on", NotFound):
            return version_in_force(db.session, org, query.get("on") or local_date(utc_now(), org))


@rule_sets.route(f"/rule-sets/{VERSION_ID}")
class RuleSetById(MethodView):
    @rule_sets.response(200, RuleSetWithDocument)
    def get(self, version_id):
        """Show one version with its document."""
        return object_in_scope(RuleSetVersion, version_id, Action.READ_RULES)


@rule_sets.route(f"/rule-sets/{VERSION_ID}/document")
class DraftDocument(MethodView):
    @rule_sets.arguments(RuleDocument)
    @rule_sets.response(200, RuleSetWithDocument)
    @rule_sets.alt_response(409, description="The version is published and never changes: create a new draft.")
    def post(self, body, version_id):
        """Replace a draft's document, validated as a new one is."""

        def replace(_principal, _key):
            draft = object_in_scope(RuleSetVersion, version_id, Action.MANAGE_RULES)
            return update_draft(db.session, version_id=draft.id, text=body["document"], format=body["format"])

        return idempotent_write(replace, RuleSetWithDocument().dump, status=200)


@rule_sets.route(f"/rule-sets/{VERSION_ID}/publish")
class Publication(MethodView):
    @rule_sets.arguments(NothingMore, required=False)
    @rule_sets.response(200, RuleSetWithDocument)
    @rule_sets.alt_response(409, description="Already published.")
    def post(self, _nothing, version_id):
        """Publish a draft: from now on it scores service in its org and period, and never changes."""

        def publish_draft(principal, _key):
            draft = object_in_scope(RuleSetVersion, version_id, Action.MANAGE_RULES)
            return publish(db.session, actor=principal.user, version_id=draft.id)

        return idempotent_write(publish_draft, RuleSetWithDocument().dump, status=200)
