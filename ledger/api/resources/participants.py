"""Participants: volunteers, party members' and co-building units' report-ins, their employers, and teams.

A participant record is staff's to read; a volunteer sees only their own. ID numbers are
accepted when a resident registers and never given back: responses carry only the masked
form (region and last four). Employer units are shared downwards: one registered at a
district serves every community below it.
"""

from __future__ import annotations

from typing import Callable

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import selectinload

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope, page_of
from ledger.api.schemas import PageInfo, PageQuery, QueryWhole, StrictSchema, Whole, text
from ledger.db import db
from ledger.errors import NotFound
from ledger.models import (
    EmployerUnit,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    Person,
    Team,
    UnitKind,
    Volunteer,
)
from ledger.participants import (
    create_team,
    join_team,
    register_co_building_unit,
    register_employer_unit,
    register_party_member,
    register_volunteer,
)
from ledger.rankings import set_ranking_opt_out

participants = Blueprint(
    "participants",
    __name__,
    url_prefix="/api/v1",
    description="Volunteers; party members' and co-building units' report-ins; the employers party members come from.",
)
teams = Blueprint(
    "teams", __name__, url_prefix="/api/v1/teams", description="Volunteer service teams and their members."
)

MAX_ID = 2**31 - 1
#: An id in a URL: a larger number is no route at all (404), never a query the database overflows on.
PATH_ID = f"int(max={MAX_ID})"


def reference(**kwargs) -> Whole:
    """The id of another object in a request body."""
    return Whole(minimum=1, maximum=MAX_ID, **kwargs)


class Flag(fields.Boolean):
    """A JSON ``true`` or ``false``, nothing that merely looks like one (``1``, ``"yes"``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


# Finding what the caller may see -----------------------------------------------------------


def participant_in_scope(participant_id: int, action: Action, *, field: str = "id") -> Participant:
    """Return the participant if the caller may do ``action`` on them; a volunteer may act only on themselves."""
    participant = db.session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field=field)
    current_principal().authorize(action, participant.org, participant_id=participant.id)
    return participant


def _org_of(instance) -> OrgNode:
    """Return the org of a model that keeps only its ``org_id`` (teams, employer units)."""
    return db.session.get(OrgNode, instance.org_id)


def _record_scopes() -> tuple[list[str] | None, list[str]]:
    """Split the caller's subtrees into those where they read everyone's records and those where only their own.

    The policy decides: in each subtree it is asked about a record that is not the caller's
    own; where it says not found, the caller (a volunteer there) may read only their own.
    ``None`` for the first means everywhere.
    """
    principal = current_principal()
    paths = principal.scopes(Action.READ_PARTICIPANTS)
    if paths is None:
        return None, []
    everyone, own = [], []
    for org in db.session.scalars(select(OrgNode).where(OrgNode.path.in_(paths))):
        try:
            principal.authorize(Action.READ_PARTICIPANTS, org)
            everyone.append(org.path)
        except NotFound:
            own.append(org.path)
    return everyone, own


def in_subtrees(paths: list[str] | None):
    """Return the condition "the ``OrgNode`` of the statement lies in one of these subtrees" (``None``: anywhere)."""
    if paths is None:
        return true()
    return or_(*(OrgNode.path.startswith(path) for path in paths)) if paths else false()


def _ancestors(path: str) -> list[str]:
    """Return the paths from the root down to ``path``: "/1/4/9/" → "/1/", "/1/4/", "/1/4/9/"."""
    ids = path.strip("/").split("/")
    return ["/" + "/".join(ids[: depth + 1]) + "/" for depth in range(len(ids))]


def _employer_for(org: OrgNode, employer_unit_id: int) -> EmployerUnit:
    """Return the employer a party member of ``org`` reports from.

    One registered at ``org`` or above it serves everything below; any other must be within
    the caller's scope.
    """
    employer = db.session.get(EmployerUnit, employer_unit_id)
    if employer is not None and org.path.startswith(_org_of(employer).path):
        return employer
    return object_in_scope(
        EmployerUnit, employer_unit_id, Action.READ_PARTICIPANTS, field="employer_unit_id", org_of=_org_of
    )


# Schemas -----------------------------------------------------------------------------------


class VolunteerRole(Schema):
    volunteer_number = fields.String()
    registered_on = fields.Date()


class PartyMemberRole(Schema):
    employer_unit_id = fields.Integer()
    employer_name = fields.String(attribute="employer_unit.name")
    reported_on = fields.Date()


class UnitRole(Schema):
    unit_kind = fields.String()
    credit_code = fields.String(allow_none=True)
    reported_on = fields.Date()


class ParticipantSchema(StrictSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "person or unit"})
    display_name = fields.String()
    org_id = fields.Integer()
    org_name = fields.String(attribute="org.name")
    id_number_masked = fields.String(
        attribute="person.id_number_masked",
        allow_none=True,
        dump_default=None,
        metadata={"description": "A person's ID number with all but the region and last four hidden; null for a unit."},
    )
    volunteer = fields.Nested(VolunteerRole, attribute="person.volunteer", allow_none=True, dump_default=None)
    party_member = fields.Nested(PartyMemberRole, attribute="person.party_member", allow_none=True, dump_default=None)
    unit = fields.Nested(UnitRole, allow_none=True)
    ranking_opt_out = fields.Boolean(metadata={"description": "Left out of public rankings (staff still see them)."})


class ParticipantPage(StrictSchema):
    items = fields.List(fields.Nested(ParticipantSchema))
    page = fields.Nested(PageInfo)


class NewResident(StrictSchema):
    """What registering any resident needs: where they live, who they are."""

    org_id = reference(required=True, metadata={"description": "The community or grid the resident lives in."})
    real_name = text(maximum=100, required=True)
    id_number = text(
        maximum=32,
        required=True,
        metadata={"description": "The 18-character resident ID number; stored only as a keyed digest and a mask."},
    )


class NewVolunteer(NewResident):
    volunteer_number = text(maximum=32, required=True)
    registered_on = fields.Date(required=True)


class NewPartyMember(NewResident):
    employer_unit_id = reference(required=True)
    reported_on = fields.Date(required=True)


class NewCoBuildingUnit(StrictSchema):
    community_id = reference(required=True)
    name = text(maximum=200, required=True)
    unit_kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in UnitKind]))
    reported_on = fields.Date(required=True)
    credit_code = text(maximum=32, load_default=None, allow_none=True)


class ParticipantQuery(PageQuery):
    org_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "Only participants in this org's subtree."})
    category = fields.String(validate=validate.OneOf(["volunteer", "party_member", "unit"]))
    name = text(maximum=100, metadata={"description": "Names starting with this."})
    volunteer_number = text(maximum=32)


class RankingVisibility(StrictSchema):
    hide = Flag(required=True, metadata={"description": "true: leave out of public rankings; false: show again."})


class EmployerUnitSchema(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    name = fields.String()
    credit_code = fields.String(allow_none=True)


class EmployerUnitPage(StrictSchema):
    items = fields.List(fields.Nested(EmployerUnitSchema))
    page = fields.Nested(PageInfo)


class NewEmployerUnit(StrictSchema):
    org_id = reference(required=True, metadata={"description": "Where it is registered; it serves everything below."})
    name = text(maximum=200, required=True)
    credit_code = text(maximum=32, load_default=None, allow_none=True)


class EmployerUnitQuery(PageQuery):
    name = text(maximum=200, metadata={"description": "Names starting with this."})


# Participants ------------------------------------------------------------------------------

#: What a participant's record shows, loaded with the page rather than row by row.
_RECORD_LOADING = (
    selectinload(Participant.org),
    selectinload(Participant.unit),
    selectinload(Participant.person).selectinload(Person.volunteer),
    selectinload(Participant.person).selectinload(Person.party_member).selectinload(PartyMember.employer_unit),
)

_CATEGORIES = {
    "volunteer": Participant.id.in_(select(Volunteer.participant_id)),
    "party_member": Participant.id.in_(select(PartyMember.participant_id)),
    "unit": Participant.kind == ParticipantKind.UNIT,
}

_dump_participant = ParticipantSchema().dump


def _register_resident(register, body: dict, role_arguments: Callable[[OrgNode], dict]):
    """Register a resident in the org of ``body`` through ``register``, if the caller manages participants there.

    ``role_arguments(org)`` gives what the role itself needs (a volunteer number, an employer).
    """

    def work(_principal, _key):
        org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_PARTICIPANTS, field="org_id")
        return register(
            db.session,
            org=org,
            real_name=body["real_name"],
            id_number=body["id_number"],
            id_number_key=current_app.config["LEDGER_ID_NUMBER_KEY"],
            **role_arguments(org),
        )

    return idempotent_write(work, _dump_participant)


@participants.route("/volunteers")
class Volunteers(MethodView):
    @participants.arguments(NewVolunteer)
    @participants.response(201, ParticipantSchema)
    @participants.alt_response(409, description="The volunteer number is taken, or the person is already a volunteer.")
    def post(self, body):
        """Register a resident as a volunteer (or add the volunteer role to someone already registered)."""
        return _register_resident(
            register_volunteer,
            body,
            lambda _org: {"volunteer_number": body["volunteer_number"], "registered_on": body["registered_on"]},
        )


@participants.route("/party-members")
class PartyMembers(MethodView):
    @participants.arguments(NewPartyMember)
    @participants.response(201, ParticipantSchema)
    @participants.alt_response(409, description="The person has already reported in as a party member.")
    def post(self, body):
        """Record an in-service party member's report-in to the community they live in."""
        return _register_resident(
            register_party_member,
            body,
            lambda org: {"employer": _employer_for(org, body["employer_unit_id"]), "reported_on": body["reported_on"]},
        )


@participants.route("/co-building-units")
class CoBuildingUnits(MethodView):
    @participants.arguments(NewCoBuildingUnit)
    @participants.response(201, ParticipantSchema)
    @participants.alt_response(409, description="The unit has already reported in to this community.")
    def post(self, body):
        """Record an organisation's report-in to a community as a co-building unit."""

        def work(_principal, _key):
            community = object_in_scope(OrgNode, body["community_id"], Action.MANAGE_PARTICIPANTS, field="community_id")
            return register_co_building_unit(
                db.session,
                community=community,
                name=body["name"],
                unit_kind=body["unit_kind"],
                reported_on=body["reported_on"],
                credit_code=body["credit_code"],
            )

        return idempotent_write(work, _dump_participant)


@participants.route("/participants")
class Participants(MethodView):
    @participants.arguments(ParticipantQuery, location="query")
    @participants.response(200, ParticipantPage)
    def get(self, query):
        """List the participants you may see (a volunteer: only themselves), oldest first."""
        everyone, own = _record_scopes()
        visible = in_subtrees(everyone)
        own_id = current_principal().user.participant_id
        if own and own_id is not None:
            visible = or_(visible, and_(Participant.id == own_id, in_subtrees(own)))
        statement = (
            select(Participant)
            .join(OrgNode, Participant.org_id == OrgNode.id)
            .where(visible)
            .options(*_RECORD_LOADING)
            .order_by(Participant.id)
        )
        if "org_id" in query:
            org = object_in_scope(OrgNode, query["org_id"], Action.READ_ORGS, field="org_id")
            statement = statement.where(OrgNode.path.startswith(org.path))
        if "category" in query:
            statement = statement.where(_CATEGORIES[query["category"]])
        if "name" in query:
            statement = statement.where(Participant.display_name.startswith(query["name"], autoescape=True))
        if "volunteer_number" in query:
            statement = statement.where(
                Participant.id.in_(
                    select(Volunteer.participant_id).where(Volunteer.volunteer_number == query["volunteer_number"])
                )
            )
        return page_of(statement, query)


@participants.route(f"/participants/<{PATH_ID}:participant_id>")
class OneParticipant(MethodView):
    @participants.response(200, ParticipantSchema)
    def get(self, participant_id):
        """Show one participant: their roles, their org, their masked ID number."""
        return participant_in_scope(participant_id, Action.READ_PARTICIPANTS)


@participants.route(f"/participants/<{PATH_ID}:participant_id>/ranking-visibility")
class ParticipantRankingVisibility(MethodView):
    @participants.arguments(RankingVisibility)
    @participants.response(200, ParticipantSchema)
    def post(self, body, participant_id):
        """Leave a participant out of public rankings, or show them again (staff, or the volunteer themself)."""

        def work(_principal, _key):
            participant = participant_in_scope(participant_id, Action.CHOOSE_RANKING_VISIBILITY)
            return set_ranking_opt_out(db.session, participant_id=participant.id, opt_out=body["hide"])

        return idempotent_write(work, _dump_participant, status=200)


# Employer units ----------------------------------------------------------------------------


@participants.route("/employer-units")
class EmployerUnits(MethodView):
    @participants.arguments(EmployerUnitQuery, location="query")
    @participants.response(200, EmployerUnitPage)
    def get(self, query):
        """List the employers you may pick from: those registered in your subtree or above it."""
        everyone, _own = _record_scopes()
        visible = in_subtrees(everyone)
        if everyone:
            above = sorted({path for scope in everyone for path in _ancestors(scope)})
            visible = or_(visible, OrgNode.path.in_(above))
        statement = (
            select(EmployerUnit)
            .join(OrgNode, EmployerUnit.org_id == OrgNode.id)
            .where(visible)
            .order_by(EmployerUnit.name)
        )
        if "name" in query:
            statement = statement.where(EmployerUnit.name.startswith(query["name"], autoescape=True))
        return page_of(statement, query)

    @participants.arguments(NewEmployerUnit)
    @participants.response(201, EmployerUnitSchema)
    @participants.alt_response(409, description="An employer with this name or credit code exists.")
    def post(self, body):
        """Register an employer that in-service party members report from."""

        def work(_principal, _key):
            org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_PARTICIPANTS, field="org_id")
            return register_employer_unit(db.session, org=org, name=body["name"], credit_code=body["credit_code"])

        return idempotent_write(work, EmployerUnitSchema().dump)


# Teams -------------------------------------------------------------------------------------


class TeamSchema(StrictSchema):
    id = fields.Integer()
    org_id = fields.Integer()
    name = fields.String()
    founded_on = fields.Date(allow_none=True)


class TeamMemberSchema(Schema):
    participant_id = fields.Integer()
    display_name = fields.String(attribute="participant.display_name")
    joined_on = fields.Date()


class TeamDetail(TeamSchema):
    members = fields.List(fields.Nested(TeamMemberSchema))


class TeamPage(StrictSchema):
    items = fields.List(fields.Nested(TeamSchema))
    page = fields.Nested(PageInfo)


class TeamQuery(PageQuery):
    org_id = QueryWhole(minimum=1, maximum=MAX_ID, metadata={"description": "Only teams in this org's subtree."})


class NewTeam(StrictSchema):
    org_id = reference(required=True)
    name = text(maximum=200, required=True)
    founded_on = fields.Date(load_default=None, allow_none=True)


class NewTeamMember(StrictSchema):
    participant_id = reference(required=True)
    joined_on = fields.Date(required=True)


def _team_in_scope(team_id: int, action: Action) -> Team:
    return object_in_scope(Team, team_id, action, org_of=_org_of)


@teams.route("")
class Teams(MethodView):
    @teams.arguments(TeamQuery, location="query")
    @teams.response(200, TeamPage)
    def get(self, query):
        """List the teams in your subtrees, by name."""
        everyone, _own = _record_scopes()
        statement = (
            select(Team)
            .join(OrgNode, Team.org_id == OrgNode.id)
            .where(in_subtrees(everyone))
            .order_by(Team.name, Team.id)
        )
        if "org_id" in query:
            org = object_in_scope(OrgNode, query["org_id"], Action.READ_ORGS, field="org_id")
            statement = statement.where(OrgNode.path.startswith(org.path))
        return page_of(statement, query)

    @teams.arguments(NewTeam)
    @teams.response(201, TeamSchema)
    @teams.alt_response(409, description="The org already has a team of this name.")
    def post(self, body):
        """Found a volunteer service team in an org you manage participants of."""

        def work(_principal, _key):
            org = object_in_scope(OrgNode, body["org_id"], Action.MANAGE_PARTICIPANTS, field="org_id")
            return create_team(db.session, org=org, name=body["name"], founded_on=body["founded_on"])

        return idempotent_write(work, TeamSchema().dump)


@teams.route(f"/<{PATH_ID}:team_id>")
class OneTeam(MethodView):
    @teams.response(200, TeamDetail)
    def get(self, team_id):
        """Show a team and its members."""
        return _team_in_scope(team_id, Action.READ_PARTICIPANTS)


@teams.route(f"/<{PATH_ID}:team_id>/members")
class TeamMembers(MethodView):
    @teams.arguments(NewTeamMember)
    @teams.response(201, TeamDetail)
    @teams.alt_response(409, description="The participant is already in the team.")
    def post(self, body, team_id):
        """Add a participant of the team's org to the team."""

        def work(_principal, _key):
            team = _team_in_scope(team_id, Action.MANAGE_PARTICIPANTS)
            participant = participant_in_scope(body["participant_id"], Action.READ_PARTICIPANTS, field="participant_id")
            join_team(db.session, team=team, participant=participant, joined_on=body["joined_on"])
            return team

        return idempotent_write(work, TeamDetail().dump)
