"""Standings: rankings and own rank, star levels, annual titles and co-building units' points.

Rankings are read from period totals, never from the ledger. The public sees a ranking
without those who opted out (minors are out unless they opt in); staff, who may read full
rankings, see everyone, and may ask for the public view with ``public=true``. Title
eligibility names people against criteria and includes those who opted out, so it is for
staff only; awarding a year's titles is a street admin's decision.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ledger.api.auth import current_principal
from ledger.api.idempotency import idempotent_write
from ledger.api.policy import Action
from ledger.api.resources.common import object_in_scope
from ledger.api.resources.ledger import PARTICIPANT
from ledger.api.resources.participants import MAX_ID, participant_in_scope
from ledger.api.schemas import PageInfo, PageQuery, QueryWhole, StrictSchema, Whole, text
from ledger.activities import participant_category
from ledger.db import db
from ledger.models import OrgNode, utc_now
from ledger.orgs import local_date
from ledger.rankings import (
    Period,
    award_titles,
    own_standing,
    parse_period,
    ranking,
    star_record,
    title_reports,
    unit_points_by_kind,
)
from ledger.rulesets import Category

standings = Blueprint(
    "standings",
    __name__,
    url_prefix="/api/v1",
    description="Rankings and own rank, star levels, annual title eligibility and awards, co-building units' points.",
)

ORG = f"<int(min=1, max={MAX_ID}):org_id>"
#: The longest title code a rule set's titles may have (the column that stores awards).
TITLE = "<string(maxlength=40):title_code>"
CATEGORIES = [category.value for category in Category]


def ranking_terms(org: OrgNode, query: dict) -> tuple[Period, bool]:
    """Return the period a ranking request means (default: this year) and whether it sees the public list.

    The public list is forced on whoever may not read full rankings in ``org``.
    """
    period = parse_period(query.get("period") or str(local_date(utc_now(), org).year))
    public = query["public"] or not current_principal().may(Action.READ_FULL_RANKINGS, org)
    return period, public


# Schemas -----------------------------------------------------------------------------------


class RankingTerms(StrictSchema):
    period = text(
        maximum=22,
        metadata={"description": "2026, 2026-03, 2026Q1 or 2026-03-01..2026-03-15 (default: this year)."},
    )
    public = fields.Boolean(
        load_default=False, metadata={"description": "As the public sees it (forced for those who may not see all)."}
    )


class RankingQuery(PageQuery, RankingTerms):
    category = fields.String(load_default=Category.VOLUNTEER.value, validate=validate.OneOf(CATEGORIES))


class OwnStandingQuery(RankingTerms):
    category = fields.String(
        validate=validate.OneOf(CATEGORIES), metadata={"description": "Default: the participant's own category."}
    )
    neighbours = QueryWhole(minimum=0, maximum=10, load_default=2, metadata={"description": "How many above and below."})


class RankedSchema(StrictSchema):
    rank = fields.Integer()
    participant_id = fields.Integer()
    name = fields.String()
    points = fields.Integer(metadata={"description": "Points earned in the period; spending never lowers a rank."})
    service_minutes = fields.Integer()


class RankingSchema(StrictSchema):
    org_id = fields.Integer()
    category = fields.String()
    period = fields.String()
    public = fields.Boolean()
    items = fields.List(fields.Nested(RankedSchema))
    page = fields.Nested(PageInfo, metadata={"description": "total: how many are ranked."})


class OwnStandingSchema(StrictSchema):
    org_id = fields.Integer()
    category = fields.String()
    period = fields.String()
    public = fields.Boolean()
    ranked = fields.Integer()
    me = fields.Nested(RankedSchema, allow_none=True, metadata={"description": "Null with no points in the period."})
    above = fields.List(fields.Nested(RankedSchema), metadata={"description": "Just above, nearest last."})
    below = fields.List(fields.Nested(RankedSchema), metadata={"description": "Just below, nearest first."})


class LevelReached(StrictSchema):
    level = fields.Integer()
    reached_on = fields.Date()


class StarRecordSchema(StrictSchema):
    participant_id = fields.Integer()
    level = fields.Integer()
    service_minutes = fields.Integer(metadata={"description": "Verified service to date."})
    next_level = fields.Integer(allow_none=True)
    minutes_to_next = fields.Integer(allow_none=True)
    reached = fields.List(fields.Nested(LevelReached))
    year_level = fields.Integer(allow_none=True, metadata={"description": "This year's level, when the rules have a yearly ladder."})
    year_minutes = fields.Integer()


class YearQuery(StrictSchema):
    year = QueryWhole(minimum=2000, maximum=2100, required=True)


class TitleQuery(YearQuery):
    title = text(maximum=40, metadata={"description": "One title's code (default: every title of the rules)."})


class CriterionSchema(StrictSchema):
    criterion = fields.String(metadata={"description": "min_hours (in minutes), min_points, min_activities, max_rank, …"})
    required = fields.Integer()
    achieved = fields.Integer()
    met = fields.Boolean()
    shortfall = fields.Integer()


class CandidateSchema(StrictSchema):
    participant_id = fields.Integer()
    name = fields.String()
    eligible = fields.Boolean(attribute="eligibility.eligible")
    criteria = fields.List(fields.Nested(CriterionSchema), attribute="eligibility.criteria")


class TitleReportSchema(StrictSchema):
    title_code = fields.String()
    title_name = fields.String()
    year = fields.Integer()
    rule_set_version_id = fields.Integer()
    candidates = fields.List(fields.Nested(CandidateSchema))


class TitleReports(StrictSchema):
    items = fields.List(fields.Nested(TitleReportSchema))


class AwardRequest(StrictSchema):
    year = Whole(minimum=2000, maximum=2100, required=True)


class AwardSchema(StrictSchema):
    participant_id = fields.Integer()
    title_code = fields.String()
    year = fields.Integer()
    org_id = fields.Integer()
    rule_set_version_id = fields.Integer()
    granted_at = fields.DateTime()


class Awards(StrictSchema):
    items = fields.List(fields.Nested(AwardSchema), metadata={"description": "Granted now; those who held it keep theirs."})


class UnitPointsSchema(StrictSchema):
    participant_id = fields.Integer()
    name = fields.String()
    total = fields.Integer()
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "Points by activity type."})


class UnitPointsList(StrictSchema):
    org_id = fields.Integer()
    year = fields.Integer()
    items = fields.List(fields.Nested(UnitPointsSchema), metadata={"description": "Most points first."})


# Rankings ----------------------------------------------------------------------------------


@standings.route(f"/orgs/{ORG}/rankings")
class Ranking(MethodView):
    @standings.arguments(RankingQuery, location="query")
    @standings.response(200, RankingSchema)
    def get(self, query, org_id):
        """Rank a category in an org's subtree by points earned in a period, a page at a time."""
        org = object_in_scope(OrgNode, org_id, Action.READ_RANKINGS)
        period, public = ranking_terms(org, query)
        size = query["page_size"]
        result = ranking(
            db.session,
            org=org,
            category=query["category"],
            period=period,
            public=public,
            limit=size,
            offset=(query["page"] - 1) * size,
        )
        return {
            "org_id": org.id,
            "category": result.category,
            "period": period.label,
            "public": public,
            "items": result.rows,
            "page": {"page": query["page"], "page_size": size, "total": result.ranked},
        }


@standings.route(f"/orgs/{ORG}/rankings/participants/{PARTICIPANT}")
class OwnStanding(MethodView):
    @standings.arguments(OwnStandingQuery, location="query")
    @standings.response(200, OwnStandingSchema)
    def get(self, query, org_id, participant_id):
        """Show a participant's rank with the people just above and below (a volunteer: only their own)."""
        org = object_in_scope(OrgNode, org_id, Action.READ_RANKINGS)
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        period, public = ranking_terms(org, query)
        category = query.get("category") or participant_category(participant)
        standing = own_standing(
            db.session,
            org=org,
            category=category,
            period=period,
            participant_id=participant.id,
            public=public,
            neighbours=query["neighbours"],
        )
        return {
            "org_id": org.id,
            "category": category,
            "period": period.label,
            "public": public,
            "ranked": standing.ranked,
            "me": standing.me,
            "above": standing.above,
            "below": standing.below,
        }


# Star levels -------------------------------------------------------------------------------


@standings.route(f"/participants/{PARTICIPANT}/stars")
class Stars(MethodView):
    @standings.response(200, StarRecordSchema)
    def get(self, participant_id):
        """Show a participant's star level, the day each level was reached, and the time to the next."""
        participant = participant_in_scope(participant_id, Action.READ_LEDGER, field="participant_id")
        record = star_record(db.session, participant_id=participant.id, today=local_date(utc_now(), participant.org))
        return {
            "participant_id": participant.id,
            "level": record.level,
            "service_minutes": record.service_minutes,
            "next_level": record.next_level,
            "minutes_to_next": record.minutes_to_next,
            "reached": [{"level": level, "reached_on": day} for level, day in record.reached],
            "year_level": record.year_level,
            "year_minutes": record.year_minutes,
        }


# Annual titles and units -------------------------------------------------------------------


@standings.route(f"/orgs/{ORG}/titles")
class Titles(MethodView):
    @standings.arguments(TitleQuery, location="query")
    @standings.response(200, TitleReports)
    def get(self, query, org_id):
        """Say who in an org qualifies for each annual title of a year, criterion by criterion (staff only)."""
        org = object_in_scope(OrgNode, org_id, Action.READ_FULL_RANKINGS)
        reports = title_reports(
            db.session, org=org, year=query["year"], today=local_date(utc_now(), org), title_code=query.get("title")
        )
        return {"items": reports}


@standings.route(f"/orgs/{ORG}/titles/{TITLE}/awards")
class TitleAwards(MethodView):
    @standings.arguments(AwardRequest)
    @standings.response(201, Awards)
    def post(self, body, org_id, title_code):
        """Grant a title for a year to everyone in the org who qualifies (a street admin's decision)."""

        def award(principal, _key):
            org = object_in_scope(OrgNode, org_id, Action.MANAGE_RULES)
            granted = award_titles(
                db.session, actor=principal.user, org=org, year=body["year"], title_code=title_code, now=utc_now()
            )
            return {"items": granted}

        return idempotent_write(award, Awards().dump)


@standings.route(f"/orgs/{ORG}/unit-points")
class UnitPoints(MethodView):
    @standings.arguments(YearQuery, location="query")
    @standings.response(200, UnitPointsList)
    def get(self, query, org_id):
        """Show each co-building unit's points of a year by kind of contribution (staff only: opt-outs included)."""
        org = object_in_scope(OrgNode, org_id, Action.READ_FULL_RANKINGS)
        return {"org_id": org.id, "year": query["year"], "items": unit_points_by_kind(db.session, org=org, year=query["year"])}
