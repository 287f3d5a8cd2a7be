"""The authorization matrix: every route × every role × an object of the caller's own org and of another org.

``ROUTES`` has one entry per (method, URL rule) of the API: the actions the route needs
(:class:`ledger.api.policy.Action`), where its object lives, whether the object is a
volunteer's own data, and a builder of a valid request against an object of community C1
(mostly its grid, where the volunteer ``me`` lives) or the same against community C2. What
each caller must get follows from the policy's ``GRANTS`` and ``OWN_ONLY`` and from where
the caller's role is held in the fixture's org tree: an object outside that subtree is not
found (404), another volunteer's data is not found (404), an action no role of the caller
grants is forbidden (403), anything else succeeds (2xx), and nobody signed out gets past 401.
A refusal writes nothing, and a caller who cannot see community C2 never reads a word of it.

The docs, the OpenAPI document and signing in are outside the matrix, and have their own
checks at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import pytest
from sqlalchemy import func, select

from ledger.activities import report_own_service
from ledger.annual import freeze_evaluation
from ledger.api.policy import GRANTS, OWN_ONLY, Action
from ledger.certificates import issue_certificate
from ledger.db import db
from ledger.models import AppUser, EmployerUnit, OrgNode, Participant, Role, ServiceCertificate, Volunteer, utc_now
from ledger.orders import claim_order, deliver, post_order
from ledger.orgs import create_org_node
from ledger.participants import create_team, register_co_building_unit, register_employer_unit, register_party_member
from ledger.rules import create_draft
from ledger.shelf import add_reward, redeem
from ledger.transactions import participant_account
from ledger.users import create_user, ensure_user, grant_role
from tests.activity_fixtures import SHANGHAI, rules_text, service
from tests.api_fixtures import API_USERS
from tests.conftest import ID_NUMBER_KEY, valid_id_number
from tests.helpers import earn, participant_of, spend

#: What an allowed request gets: some 2xx (201 for a write that creates, 200 for the rest).
ALLOWED = "2xx"
#: The fixture's org tree by the names ``API_USERS`` uses, and the grid of C2 the world adds.
PARENT = {
    "district": None,
    "street": "district",
    "community": "street",
    "grid": "community",
    "other_community": "street",
    "other_grid": "other_community",
}
#: Where an object of each side lives, by the level a route names.
PLACES = {
    ("own", "grid"): "grid",
    ("own", "community"): "community",
    ("other", "grid"): "other_grid",
    ("other", "community"): "other_community",
    ("own", "tree"): "district",
    ("other", "tree"): "district",
}
#: Every name given to an object of community C2 has this in it.
OTHER_MARK = "和平"
#: Routes outside the matrix, each checked on its own at the end.
SEPARATELY_CHECKED = {
    "GET /api/v1/docs",
    "GET /api/v1/docs/static/<filename>",
    "GET /api/v1/openapi.json",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/logout",
    "GET /api/v1/auth/me",
    "GET /api/v1/certificate-checks/<code>",
}
PASSWORD = "correct horse battery"
#: A deadline of orders posted now.
DEADLINE = dt.date.today() + dt.timedelta(days=30)
#: The default rules as a request carries them; JSON, which is read much faster than YAML.
RULES = {"document": rules_text(), "format": "json"}


#: A rule's variable with its converter, ``<int(max=9):org_id>``, read as its name alone.
CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def covers(scope: str | None, place: str) -> bool:
    """Tell whether a role held over ``scope`` (``None``: everywhere) reaches ``place``."""
    node = place
    while node is not None and node != scope:
        node = PARENT[node]
    return scope is None or node == scope


def route_key(method: str, rule: str) -> str:
    """Name a route as ``GET /api/v1/orgs/<org_id>``: its rule without the converters."""
    return method + " " + CONVERTER.sub(r"<\1>", rule)


@functools.cache
def _counting():
    return select(*(select(func.count()).select_from(table).scalar_subquery() for table in db.metadata.sorted_tables))


def row_counts(session) -> tuple[int, ...]:
    """Return the number of rows of every table, in one query.

    A write that succeeds through the API stores its Idempotency-Key's answer, so a refusal
    that wrote anything at all shows here, even one that only changed a row.
    """
    return tuple(session.execute(_counting()).one())


def api_routes(app) -> set[str]:
    return {
        route_key(method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def patrol(org_id: int, participant_id: int, start: str, end: str) -> dict:
    """Return service as a request states it, between two Shanghai wall-clock times."""
    start, end = (f"{moment.replace(' ', 'T')}:00+08:00" for moment in (start, end))
    return {
        "org_id": org_id,
        "participant_id": participant_id,
        "activity_type": "patrol",
        "started_at": start,
        "ended_at": end,
    }


# The world the matrix acts on ----------------------------------------------------------------


def spared(make):
    """Make an object for a write anew only once a write that succeeded may have used the last one up.

    A refused write leaves its object as it was, so the next request may have it: most
    callers are refused most writes, and making orders and activities is what takes time.
    """

    @functools.wraps(make)
    def spare(world, *arguments):
        key = (make.__name__, *arguments)
        if key not in world.spares:
            world.spares[key] = make(world, *arguments)
        return world.spares[key]

    return spare


@dataclass(frozen=True)
class Side:
    """Objects of one community: the callers' own (C1) or another (C2)."""

    name: str
    community: int
    grid: int
    #: The first characters of the names of objects made here.
    label: str
    #: A volunteer living in ``grid`` (on the own side ``api.me``), and the user signed in as them.
    participant: int
    reporter: int
    #: The volunteer's number and name, as a sign-in sheet names them.
    volunteer_number: str | None = None
    volunteer_name: str | None = None
    #: A scored patrol of the volunteer, the transaction that scored it, and its day.
    activity: int | None = None
    transaction: int | None = None
    served_on: dt.date | None = None
    #: A service certificate of that day, which no later write of the matrix touches.
    certificate: int | None = None
    team: int | None = None
    #: A rule-set draft at ``grid``.
    draft: int | None = None
    #: A user with a role over ``community``, whose tokens may be revoked.
    clerk: int | None = None
    #: A published order in ``grid``.
    order: int | None = None
    #: A co-building unit of ``community``; goods on its shelf with stock to spare, and a priority (welfare linkage).
    unit: int | None = None
    reward: int | None = None
    priority: int | None = None
    #: A party member who reported in to ``grid``; the annual evaluation of ``community`` is frozen for 2025.
    party_member: int | None = None


class Made(NamedTuple):
    """An order made for a write, its claim by the side's volunteer (if it went that far), and when it was posted."""

    order: int
    claim: int | None
    posted: dt.datetime


@dataclass
class World:
    """The two sides, and makers of fresh objects for the writes that use one up."""

    api: object
    session: object
    write: Callable
    desk: object
    make_volunteer: Callable
    #: An employer registered at the district, whom party members on both sides report from.
    employer: int
    serial: Callable[[], int] = dataclasses.field(default_factory=lambda: itertools.count(1).__next__)
    #: Objects made for writes and not yet used up, by maker and arguments (see :func:`spared`).
    spares: dict = dataclasses.field(default_factory=dict)
    own: Side | None = None
    other: Side | None = None

    def hour(self) -> tuple[str, str]:
        """Return a fresh hour of service, on a day of 2026 of its own, as Shanghai wall-clock times."""
        day = dt.date(2026, 1, 1) + dt.timedelta(days=self.serial())
        return f"{day} 09:00", f"{day} 10:00"

    def service_body(self, side: Side) -> dict:
        """Return an hour of patrol by the side's volunteer in its grid, as a request states it."""
        return patrol(side.grid, side.participant, *self.hour())

    def resident(self, side: Side) -> dict:
        return {"org_id": side.grid, "real_name": f"{side.label}居民", "id_number": valid_id_number()}

    @spared
    def participant(self, side: Side) -> int:
        return participant_of(self.session, self.make_volunteer(side.grid, name=f"{side.label}队员"))

    @spared
    def scored(self, side: Side):
        """Record an hour of patrol for the side's volunteer; return the recorded activity."""
        return self.desk.record(service(side.participant, *self.hour()), org_id=side.grid)

    @spared
    def pending_report(self, side: Side) -> int:
        def report():
            return report_own_service(
                self.session,
                actor=self.session.get(AppUser, side.reporter),
                org=self.session.get(OrgNode, side.grid),
                service=service(side.participant, *self.hour()),
                idempotency_key=f"report-{self.serial()}",
            ).activity.id

        return self.write(report)

    @spared
    def points(self, side: Side, amount: int = 5) -> int:
        """Give the side's volunteer points in the grid's books; return the transaction's id."""
        account_id = participant_account(self.session, side.participant).id
        return self.write(
            lambda: earn(self.session, self.desk.staff_id, side.grid, account_id, amount, dt.date(2026, 6, 1)).id
        )

    @spared
    def order(self, side: Side, stage: str) -> Made:
        """Post an order in the side's grid hours ago and take it to ``stage``: draft, published, claimed or delivered.

        Each is posted at an hour of its own, so that the service its confirmation records
        never overlaps another's.
        """
        posted = utc_now() - dt.timedelta(hours=2 * self.serial())

        def make() -> Made:
            actor = self.desk.user()
            order = post_order(
                self.session,
                actor=actor,
                org=self.session.get(OrgNode, side.grid),
                kind="micro_wish",
                title=f"{side.label}微心愿",
                activity_type="micro_wish",
                deadline=DEADLINE,
                beneficiary_group="other",
                idempotency_key=f"order-{self.serial()}",
                publish=stage != "draft",
                now=posted,
            )
            if stage in ("draft", "published"):
                return Made(order.id, None, posted)
            claim = claim_order(
                self.session, actor=actor, order_id=order.id, participant_id=side.participant, now=posted
            )
            if stage == "delivered":
                served = (posted, posted + dt.timedelta(hours=1))
                deliver(
                    self.session,
                    actor=actor,
                    claim_id=claim.event.claim_id,
                    served_from=served[0],
                    served_until=served[1],
                    note="已送到",
                    now=served[1],
                )
            return Made(order.id, claim.event.claim_id, posted)

        return self.write(make)

    @spared
    def redemption(self, side: Side) -> int:
        """Spend a point of the side's volunteer on the side's reward; return the redemption's id."""
        return self.write(
            lambda: (
                redeem(
                    self.session,
                    actor=self.desk.user(),
                    participant_id=side.participant,
                    reward_id=side.reward,
                    idempotency_key=f"redeem-{self.serial()}",
                ).redemption.id
            )
        )

    @spared
    def draft(self, side: Side) -> int:
        grid = self.session.get(OrgNode, side.grid)
        return self.write(
            lambda: (
                create_draft(self.session, actor=self.desk.user(), org=grid, text=RULES["document"], format="json").id
            )
        )

    def furnish(self, side: Side) -> Side:
        """Return ``side`` with its standing objects made, and points for its volunteer to spend."""
        recorded = self.scored(side)
        served_on = recorded.activity.started_at.astimezone(SHANGHAI).date()
        self.points(side, 100)

        def objects():
            community = self.session.get(OrgNode, side.community)
            clerk = ensure_user(self.session, f"clerk-{side.name}", f"{side.label}社区干事")
            grant_role(self.session, user=clerk, role="community_staff", org=community)
            team = create_team(self.session, org=self.session.get(OrgNode, side.grid), name=f"{side.label}服务队")
            unit = register_co_building_unit(
                self.session,
                community=community,
                name=f"{side.label}物业公司",
                unit_kind="enterprise",
                reported_on=dt.date(2025, 3, 1),
            )
            reward, priority = (
                add_reward(
                    self.session,
                    actor=self.desk.user(),
                    org=community,
                    name=f"{side.label}{name}",
                    kind=kind,
                    price_points=1,
                    active_from=dt.date(2025, 1, 1),
                    stock=1000,
                )
                for name, kind in (("大米", "goods"), ("优先就医", "priority"))
            )
            party_member = register_party_member(
                self.session,
                org=self.session.get(OrgNode, side.grid),
                real_name=f"{side.label}党员",
                id_number=valid_id_number(),
                employer=self.session.get(EmployerUnit, self.employer),
                reported_on=dt.date(2025, 5, 4),
                id_number_key=ID_NUMBER_KEY,
            )
            freeze_evaluation(self.session, actor=self.desk.user(), org=community, year=2025, now=utc_now())
            certificate = issue_certificate(
                self.session,
                actor=self.desk.user(),
                participant=self.session.get(Participant, side.participant),
                period_from=served_on,
                period_to=served_on,
                idempotency_key=f"certificate-{side.name}",
            ).certificate
            volunteer_number, volunteer_name = self.session.execute(
                select(Volunteer.volunteer_number, Participant.display_name)
                .join(Participant, Participant.id == Volunteer.participant_id)
                .where(Participant.id == side.participant)
            ).one()
            return {
                "team": team.id,
                "clerk": clerk.id,
                "unit": unit.id,
                "reward": reward.id,
                "priority": priority.id,
                "party_member": party_member.id,
                "certificate": certificate.id,
                "volunteer_number": volunteer_number,
                "volunteer_name": volunteer_name,
            }

        return dataclasses.replace(
            side,
            activity=recorded.activity.id,
            transaction=recorded.transaction.id,
            served_on=served_on,
            draft=self.draft(side),
            order=self.order(side, "published").order,
            **self.write(objects),
        )

    def send(self, request: Request, caller: str | None):
        if request.method == "GET":
            return self.api.get(request.path, as_=caller, **request.query)
        if request.upload is None:
            return self.api.post(request.path, request.body, as_=caller)
        return self.api.client.post(
            request.path,
            data={"file": (io.BytesIO(request.upload.encode()), "sheet.csv")},
            headers=self.api.headers(caller, key=f"upload-{self.serial()}"),
            content_type="multipart/form-data",
        )

    def side(self, name: str) -> Side:
        return {"own": self.own, "other": self.other}[name]

    def signed_in_as(self, caller: str | None) -> int | None:
        """Return the participant a caller signs in as, if any."""
        return {"volunteer": self.api.me, "volunteer2": self.api.other_volunteer}.get(caller)


@pytest.fixture
def world(api, session, write, street, desk, make_volunteer) -> World:
    def foundations():
        district, other = session.get(OrgNode, street.district), session.get(OrgNode, street.other_community)
        employer = register_employer_unit(session, org=district, name="区供电公司")
        register_employer_unit(session, org=other, name=f"{OTHER_MARK}医院")
        grid = create_org_node(session, code="C2-G1", name=f"{OTHER_MARK}网格", kind="grid", parent=other)
        volunteer = session.execute(select(AppUser).where(AppUser.username == "api-volunteer")).scalar_one()
        return employer.id, grid.id, volunteer.id

    employer, other_grid, own_reporter = write(foundations)
    world = World(api, session, write, desk, make_volunteer, employer)
    elsewhere = participant_of(session, make_volunteer(other_grid, name=f"{OTHER_MARK}居民"))

    def resident_user():
        user = ensure_user(session, "resident-other", f"{OTHER_MARK}居民")
        user.participant_id = elsewhere
        return user.id

    world.own = world.furnish(Side("own", street.community, street.grid, "幸福", api.me, own_reporter))
    world.other = world.furnish(
        Side("other", street.other_community, other_grid, OTHER_MARK, elsewhere, write(resident_user))
    )
    world.spares.clear()  # what furnishing made is standing, not to be spared for writes
    return world


# The matrix ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict | None = None
    query: dict = dataclasses.field(default_factory=dict)
    #: A CSV file uploaded as the form part ``file``, instead of a JSON body.
    upload: str | None = None


def get(path: str, **query) -> Request:
    return Request("GET", path, query=query)


def post(path: str, body: dict | None = None) -> Request:
    return Request("POST", path, body)


@dataclass(frozen=True)
class Route:
    """One route of the API, what it needs, and how to call it validly on either side."""

    key: str
    #: What the caller must be granted; none: anyone signed in.
    actions: tuple[Action, ...]
    build: Callable[[World, Side], Request]
    #: Where on a side the route's object lives: ``grid``, ``community``, the whole ``tree`` (whose
    #: every root the caller must cover), or ``None``: nowhere in particular (verification, a list).
    level: str | None = "grid"
    #: The object is the side's volunteer's own data: other volunteers are told it is not found.
    personal: bool = False
    #: Only that volunteer themself may do it, whatever else the caller is granted.
    only_themself: bool = False
    #: Only those granted one of these see the object at all (a draft order): to anyone else it is not found.
    seen_by: tuple[Action, ...] = ()

    def expected(self, caller: str | None, place: str | None, the_sides_volunteer: bool) -> int | str:
        """Say what ``caller`` gets for this route's object at ``place``.

        ``the_sides_volunteer``: the caller signs in as the volunteer of the object's side.
        """
        themself = self.personal and the_sides_volunteer
        if caller is None:
            return 401
        role_name, scope = API_USERS[caller]
        role = Role(role_name)
        granted = all(action in GRANTS[role] for action in self.actions)
        if place is None:
            return ALLOWED if granted else 403
        if self.level == "tree":
            return ALLOWED if granted and covers(scope, place) else 403
        if not covers(scope, place):
            return 404
        volunteer = role is Role.VOLUNTEER
        if volunteer and self.personal and not themself:
            return 404
        if self.seen_by and not GRANTS[role].intersection(self.seen_by):
            return 404
        if not granted:
            return 403
        if volunteer and OWN_ONLY.intersection(self.actions) and not themself:
            return 404
        if self.only_themself and not themself:
            return 403
        return ALLOWED


def delivery(made: Made) -> Request:
    """Return the report that a claimed order was served for the hour after it was posted."""
    served = (made.posted, made.posted + dt.timedelta(hours=1))
    body = {"served_from": served[0].isoformat(), "served_until": served[1].isoformat(), "note": "米已送到"}
    return post(f"/api/v1/order-claims/{made.claim}/deliver", body)


def donation(side: Side, start: str, end: str) -> Request:
    """Return a gift of one unit of the side's reward by its co-building unit, handed over between two times."""
    times = patrol(side.grid, side.unit, start, end)
    body = {
        "unit_participant_id": side.unit,
        "quantity": 1,
        "value_yuan": 50,
        "handed_over_from": times["started_at"],
        "handed_over_until": times["ended_at"],
    }
    return post(f"/api/v1/rewards/{side.reward}/donations", body)


def _ledger_reads() -> list[Route]:
    """Return the routes that read a participant's own account: balance, history, totals, expiries, stars."""
    return [
        Route(
            f"GET /api/v1/participants/<participant_id>/{what}",
            (Action.READ_LEDGER,),
            lambda w, s, what=what: get(f"/api/v1/participants/{s.participant}/{what}"),
            personal=True,
        )
        for what in ("balance", "history", "period-totals", "expiring", "stars")
    ]


ROUTES = (
    # Orgs, rule sets, standings.
    Route("GET /api/v1/orgs", (), lambda w, s: get("/api/v1/orgs", parent_id=s.community), level=None),
    Route(
        "POST /api/v1/orgs",
        (Action.MANAGE_ORGS,),
        lambda w, s: post(
            "/api/v1/orgs",
            {"code": f"M{w.serial()}", "name": f"{s.label}网格", "kind": "grid", "parent_id": s.community},
        ),
        level="community",
    ),
    Route("GET /api/v1/orgs/<org_id>", (Action.READ_ORGS,), lambda w, s: get(f"/api/v1/orgs/{s.grid}")),
    Route(
        "GET /api/v1/orgs/<org_id>/rule-sets",
        (Action.READ_RULES,),
        lambda w, s: get(f"/api/v1/orgs/{s.grid}/rule-sets"),
    ),
    Route(
        "POST /api/v1/orgs/<org_id>/rule-sets",
        (Action.MANAGE_RULES,),
        lambda w, s: post(f"/api/v1/orgs/{s.grid}/rule-sets", RULES),
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/rule-sets/in-force",
        (Action.READ_RULES,),
        lambda w, s: get(f"/api/v1/orgs/{s.grid}/rule-sets/in-force"),
    ),
    Route("GET /api/v1/rule-sets/<version_id>", (Action.READ_RULES,), lambda w, s: get(f"/api/v1/rule-sets/{s.draft}")),
    Route(
        "POST /api/v1/rule-sets/<version_id>/document",
        (Action.MANAGE_RULES,),
        lambda w, s: post(f"/api/v1/rule-sets/{s.draft}/document", RULES),
    ),
    Route(
        "POST /api/v1/rule-sets/<version_id>/publish",
        (Action.MANAGE_RULES,),
        lambda w, s: post(f"/api/v1/rule-sets/{w.draft(s)}/publish"),
    ),
    Route(
        "POST /api/v1/rule-sets/validate",
        (),
        lambda w, s: post("/api/v1/rule-sets/validate", RULES),
        level=None,
    ),
    Route(
        "POST /api/v1/rule-sets/simulate",
        (Action.MANAGE_RULES,),
        lambda w, s: post(
            "/api/v1/rule-sets/simulate",
            {"org_id": s.community, **RULES, "from": "2026-01-01", "to": "2026-03-31"},
        ),
        level="community",
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/rankings",
        (Action.READ_RANKINGS,),
        lambda w, s: get(f"/api/v1/orgs/{s.grid}/rankings"),
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/rankings/participants/<participant_id>",
        (Action.READ_RANKINGS, Action.READ_LEDGER),
        lambda w, s: get(f"/api/v1/orgs/{s.grid}/rankings/participants/{s.participant}"),
        personal=True,
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/titles",
        (Action.READ_FULL_RANKINGS,),
        lambda w, s: get(f"/api/v1/orgs/{s.grid}/titles", year=2026),
    ),
    Route(
        "POST /api/v1/orgs/<org_id>/titles/<title_code>/awards",
        (Action.MANAGE_RULES,),
        lambda w, s: post(f"/api/v1/orgs/{s.community}/titles/excellent_volunteer/awards", {"year": 2026}),
        level="community",
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/unit-points",
        (Action.READ_FULL_RANKINGS,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/unit-points", year=2026),
        level="community",
    ),
    # Participants, employers, teams, users.
    Route("GET /api/v1/participants", (Action.READ_ORGS,), lambda w, s: get("/api/v1/participants", org_id=s.grid)),
    Route(
        "GET /api/v1/participants/<participant_id>",
        (Action.READ_PARTICIPANTS,),
        lambda w, s: get(f"/api/v1/participants/{s.participant}"),
        personal=True,
    ),
    Route(
        "POST /api/v1/participants/<participant_id>/ranking-visibility",
        (Action.CHOOSE_RANKING_VISIBILITY,),
        lambda w, s: post(f"/api/v1/participants/{s.participant}/ranking-visibility", {"hide": False}),
        personal=True,
    ),
    *_ledger_reads(),
    Route(
        "POST /api/v1/volunteers",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post(
            "/api/v1/volunteers",
            w.resident(s) | {"volunteer_number": f"M{w.serial():05d}", "registered_on": "2025-04-01"},
        ),
    ),
    Route(
        "POST /api/v1/party-members",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post(
            "/api/v1/party-members", w.resident(s) | {"employer_unit_id": w.employer, "reported_on": "2025-05-04"}
        ),
    ),
    Route(
        "POST /api/v1/co-building-units",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post(
            "/api/v1/co-building-units",
            {
                "community_id": s.community,
                "name": f"{s.label}单位{w.serial()}",
                "unit_kind": "enterprise",
                "reported_on": "2025-03-01",
            },
        ),
        level="community",
    ),
    Route("GET /api/v1/employer-units", (), lambda w, s: get("/api/v1/employer-units"), level=None),
    Route(
        "POST /api/v1/employer-units",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post("/api/v1/employer-units", {"org_id": s.community, "name": f"{s.label}公司{w.serial()}"}),
        level="community",
    ),
    Route("GET /api/v1/teams", (Action.READ_ORGS,), lambda w, s: get("/api/v1/teams", org_id=s.grid)),
    Route(
        "POST /api/v1/teams",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post("/api/v1/teams", {"org_id": s.grid, "name": f"{s.label}队{w.serial()}"}),
    ),
    Route("GET /api/v1/teams/<team_id>", (Action.READ_PARTICIPANTS,), lambda w, s: get(f"/api/v1/teams/{s.team}")),
    Route(
        "POST /api/v1/teams/<team_id>/members",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post(
            f"/api/v1/teams/{s.team}/members", {"participant_id": w.participant(s), "joined_on": "2026-02-01"}
        ),
    ),
    Route("GET /api/v1/users", (), lambda w, s: get("/api/v1/users"), level=None),
    Route(
        "POST /api/v1/users",
        (Action.MANAGE_USERS,),
        lambda w, s: post(
            "/api/v1/users",
            {
                "username": f"matrix-{w.serial()}",
                "display_name": f"{s.label}干事",
                "password": PASSWORD,
                "role": "community_staff",
                "org_id": s.community,
            },
        ),
        level="community",
    ),
    Route(
        "POST /api/v1/users/<user_id>/tokens/revoke",
        (Action.MANAGE_USERS,),
        lambda w, s: post(f"/api/v1/users/{s.clerk}/tokens/revoke"),
        level="community",
    ),
    # Service records.
    Route("GET /api/v1/activities", (Action.READ_ORGS,), lambda w, s: get("/api/v1/activities", org_id=s.grid)),
    Route(
        "POST /api/v1/activities", (Action.RECORD_SERVICE,), lambda w, s: post("/api/v1/activities", w.service_body(s))
    ),
    Route(
        "POST /api/v1/events",
        (Action.RECORD_SERVICE,),
        lambda w, s: post(
            "/api/v1/events",
            {key: value for key, value in w.service_body(s).items() if key != "participant_id"}
            | {"title": f"{s.label}巡逻", "attendees": [{"participant_id": s.participant}]},
        ),
    ),
    Route(
        "POST /api/v1/activities/self-reports",
        (Action.REPORT_OWN_SERVICE,),
        lambda w, s: post("/api/v1/activities/self-reports", w.service_body(s)),
        personal=True,
        only_themself=True,
    ),
    Route(
        "GET /api/v1/activities/<activity_id>",
        (Action.READ_LEDGER,),
        lambda w, s: get(f"/api/v1/activities/{s.activity}"),
        personal=True,
    ),
    Route(
        "POST /api/v1/activities/<activity_id>/review",
        (Action.REVIEW_REPORTS,),
        lambda w, s: post(f"/api/v1/activities/{w.pending_report(s)}/review", {"decision": "approve"}),
        personal=True,
    ),
    Route(
        "POST /api/v1/activities/<activity_id>/correction",
        (Action.CORRECT,),
        lambda w, s: post(
            f"/api/v1/activities/{w.scored(s).activity.id}/correction", {"reason": "更正", "travel_minutes": 10}
        ),
        personal=True,
    ),
    # The ledger and its audit.
    Route("GET /api/v1/transactions", (Action.READ_ORGS,), lambda w, s: get("/api/v1/transactions", org_id=s.grid)),
    Route(
        "GET /api/v1/transactions/<transaction_id>",
        (Action.READ_LEDGER,),
        lambda w, s: get(f"/api/v1/transactions/{s.transaction}"),
        personal=True,
    ),
    Route(
        "POST /api/v1/transactions/<transaction_id>/reversal",
        (Action.CORRECT,),
        lambda w, s: post(f"/api/v1/transactions/{w.points(s)}/reversal", {"reason": "录入错误"}),
        personal=True,
    ),
    Route("GET /api/v1/checkpoint", (Action.VERIFY,), lambda w, s: get("/api/v1/checkpoint"), level=None),
    Route("POST /api/v1/verify", (Action.VERIFY,), lambda w, s: post("/api/v1/verify", {}), level=None),
    Route(
        "POST /api/v1/expiry-runs",
        (Action.RUN_EXPIRY,),
        lambda w, s: post("/api/v1/expiry-runs", {"org_id": s.community, "as_of": "2026-11-01"}),
        level="community",
    ),
)
ORDERS = (
    Route("GET /api/v1/orders", (Action.READ_ORDERS,), lambda w, s: get("/api/v1/orders", org_id=s.grid)),
    Route(
        "POST /api/v1/orders",
        (Action.MANAGE_ORDERS,),
        lambda w, s: post(
            "/api/v1/orders",
            {
                "org_id": s.grid,
                "kind": "micro_wish",
                "title": f"{s.label}微心愿",
                "activity_type": "micro_wish",
                "deadline": DEADLINE.isoformat(),
                "publish": True,
            },
        ),
    ),
    Route("GET /api/v1/orders/<order_id>", (Action.READ_ORDERS,), lambda w, s: get(f"/api/v1/orders/{s.order}")),
    Route(
        "POST /api/v1/orders/<order_id>/publish",
        (Action.MANAGE_ORDERS,),
        lambda w, s: post(f"/api/v1/orders/{w.order(s, 'draft').order}/publish"),
        seen_by=(Action.MANAGE_ORDERS, Action.CONFIRM_ORDERS),
    ),
    Route(
        "POST /api/v1/orders/<order_id>/cancel",
        (Action.MANAGE_ORDERS,),
        lambda w, s: post(f"/api/v1/orders/{w.order(s, 'published').order}/cancel", {"reason": "不需要了"}),
    ),
    Route(
        "POST /api/v1/orders/<order_id>/claims",
        (Action.CLAIM_ORDERS,),
        lambda w, s: post(f"/api/v1/orders/{w.order(s, 'published').order}/claims", {"participant_id": s.participant}),
        personal=True,
    ),
    Route(
        "POST /api/v1/order-claims/<claim_id>/withdraw",
        (Action.CLAIM_ORDERS,),
        lambda w, s: post(f"/api/v1/order-claims/{w.order(s, 'claimed').claim}/withdraw"),
        personal=True,
    ),
    Route(
        "POST /api/v1/order-claims/<claim_id>/deliver",
        (Action.CLAIM_ORDERS,),
        lambda w, s: delivery(w.order(s, "claimed")),
        personal=True,
    ),
    # A claim shows in its order to everyone who reads the order: confirming one is forbidden, not hidden.
    Route(
        "POST /api/v1/order-claims/<claim_id>/confirm",
        (Action.CONFIRM_ORDERS,),
        lambda w, s: post(f"/api/v1/order-claims/{w.order(s, 'delivered').claim}/confirm", {"rating": 5}),
    ),
    Route(
        "POST /api/v1/order-claims/<claim_id>/reject",
        (Action.CONFIRM_ORDERS,),
        lambda w, s: post(f"/api/v1/order-claims/{w.order(s, 'delivered').claim}/reject", {"reason": "没有送到"}),
    ),
    Route(
        "POST /api/v1/orders/close-overdue",
        (Action.MANAGE_ORDERS,),
        lambda w, s: post(
            "/api/v1/orders/close-overdue", {"as_of": (dt.date.today() - dt.timedelta(days=1)).isoformat()}
        ),
        level="tree",
    ),
    Route(
        "GET /api/v1/participants/<participant_id>/open-orders",
        (Action.READ_PARTICIPANTS, Action.READ_ORDERS),
        lambda w, s: get(f"/api/v1/participants/{s.participant}/open-orders"),
        personal=True,
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/order-claim-counts",
        (Action.READ_FULL_RANKINGS,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/order-claim-counts", year=2026),
        level="community",
    ),
)
REWARDS = (
    Route(
        "GET /api/v1/orgs/<org_id>/rewards", (Action.READ_SHELF,), lambda w, s: get(f"/api/v1/orgs/{s.grid}/rewards")
    ),
    Route(
        "POST /api/v1/orgs/<org_id>/rewards",
        (Action.MANAGE_SHELF,),
        lambda w, s: post(
            f"/api/v1/orgs/{s.grid}/rewards", {"name": f"{s.label}毛巾{w.serial()}", "price_points": 3, "stock": 5}
        ),
    ),
    Route(
        "POST /api/v1/rewards/<reward_id>/restock",
        (Action.MANAGE_SHELF,),
        lambda w, s: post(f"/api/v1/rewards/{s.reward}/restock", {"quantity": 1}),
        level="community",
    ),
    Route(
        "POST /api/v1/rewards/<reward_id>/donations",
        (Action.MANAGE_SHELF,),
        lambda w, s: donation(s, *w.hour()),
        level="community",
    ),
    Route(
        "GET /api/v1/rewards/<reward_id>/priority-holders",
        (Action.READ_PARTICIPANTS,),
        lambda w, s: get(f"/api/v1/rewards/{s.priority}/priority-holders"),
        level="community",
    ),
    Route(
        "POST /api/v1/rewards/<reward_id>/redemptions",
        (Action.REDEEM,),
        lambda w, s: post(f"/api/v1/rewards/{s.reward}/redemptions", {"participant_id": s.participant}),
        personal=True,
    ),
    Route("GET /api/v1/redemptions", (Action.READ_ORGS,), lambda w, s: get("/api/v1/redemptions", org_id=s.grid)),
    # Settling a redemption is for the staff of the reward's shelf, in the community.
    Route(
        "POST /api/v1/redemptions/<redemption_id>/fulfil",
        (Action.MANAGE_SHELF,),
        lambda w, s: post(f"/api/v1/redemptions/{w.redemption(s)}/fulfil"),
        level="community",
        personal=True,
    ),
    Route(
        "POST /api/v1/redemptions/<redemption_id>/cancel",
        (Action.MANAGE_SHELF,),
        lambda w, s: post(f"/api/v1/redemptions/{w.redemption(s)}/cancel", {"reason": "不要了"}),
        level="community",
        personal=True,
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/reward-liability",
        (Action.READ_LEDGER,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/reward-liability"),
        level="community",
    ),
)


def roster(w: World, s: Side) -> str:
    """Return a volunteer roster of one new resident of the side."""
    return f"姓名,身份证号,志愿者编号,注册日期\n{s.label}居民,{valid_id_number()},M{w.serial():05d},2025-04-01\n"


def sign_in_sheet(w: World, s: Side) -> str:
    """Return a sign-in sheet of an hour of patrol by the side's volunteer."""
    start, end = w.hour()
    return (
        "志愿者编号,姓名,服务类型,服务日期,开始时间,结束时间\n"
        f"{s.volunteer_number},{s.volunteer_name},巡逻,{start[:10]},{start[11:]},{end[11:]}\n"
    )


#: Each sheet, the right importing it needs, and how to fill one in.
SHEETS = {"volunteers": (Action.MANAGE_PARTICIPANTS, roster), "activities": (Action.RECORD_SERVICE, sign_in_sheet)}
EVALUATION = (
    Route(
        "GET /api/v1/orgs/<org_id>/evaluations/<year>",
        (Action.EXPORT_EVALUATION,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/evaluations/2026"),
        level="community",
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/evaluations/<year>/export",
        (Action.EXPORT_EVALUATION,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/evaluations/2026/export", format="csv"),
        level="community",
    ),
    Route(
        "POST /api/v1/orgs/<org_id>/evaluations/<year>/freeze",
        (Action.FREEZE_EVALUATION,),
        lambda w, s: post(f"/api/v1/orgs/{s.community}/evaluations/2026/freeze"),
        level="community",
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/evaluations/<year>/changes",
        (Action.EXPORT_EVALUATION,),
        lambda w, s: get(f"/api/v1/orgs/{s.community}/evaluations/2025/changes"),
        level="community",
    ),
    Route(
        "GET /api/v1/orgs/<org_id>/employer-feedback/<year>/export",
        (Action.EXPORT_EVALUATION,),
        lambda w, s: get(
            f"/api/v1/orgs/{s.community}/employer-feedback/2026/export", format="csv", employer_unit_id=w.employer
        ),
        level="community",
    ),
    Route(
        "POST /api/v1/participants/<participant_id>/remarks",
        (Action.MANAGE_PARTICIPANTS,),
        lambda w, s: post(f"/api/v1/participants/{s.party_member}/remarks", {"year": 2026, "remark": "表现突出"}),
    ),
)
IMPORTS = (
    Route(
        "GET /api/v1/imports/<sheet_name>/template",
        (),
        lambda w, s: get("/api/v1/imports/activities/template", format="csv"),
        level=None,
    ),
    *(
        Route(
            f"POST /api/v1/orgs/<org_id>/imports/<sheet_name>{check}",
            (action,),
            lambda w, s, sheet=sheet, check=check, fill=fill: Request(
                "POST", f"/api/v1/orgs/{s.grid}/imports/{sheet}{check}", upload=fill(w, s)
            ),
        )
        for sheet, (action, fill) in SHEETS.items()
        for check in ("", "/check")
    ),
)
CERTIFICATES = (
    Route(
        "GET /api/v1/certificates",
        (Action.READ_LEDGER,),
        lambda w, s: get("/api/v1/certificates", participant_id=s.participant),
        personal=True,
    ),
    Route(
        "POST /api/v1/certificates",
        (Action.READ_PARTICIPANTS, Action.ISSUE_CERTIFICATES),
        lambda w, s: post(
            "/api/v1/certificates",
            {"participant_id": s.participant, "period_from": str(s.served_on), "period_to": str(s.served_on)},
        ),
        personal=True,
    ),
    Route(
        "GET /api/v1/certificates/<certificate_id>",
        (Action.READ_LEDGER,),
        lambda w, s: get(f"/api/v1/certificates/{s.certificate}"),
        personal=True,
    ),
    Route(
        "GET /api/v1/certificates/<certificate_id>/pdf",
        (Action.READ_LEDGER,),
        lambda w, s: get(f"/api/v1/certificates/{s.certificate}/pdf"),
        personal=True,
    ),
)
ROUTES = (*ROUTES, *ORDERS, *REWARDS, *EVALUATION, *IMPORTS, *CERTIFICATES)
CALLERS = [*API_USERS, None]
SIDES = ("own", "other")


def test_the_matrix_has_an_entry_for_every_route_of_the_api(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'routes.sqlite3'}")
    keys = {route.key for route in ROUTES}
    assert keys | SEPARATELY_CHECKED == api_routes(app)
    assert not keys & SEPARATELY_CHECKED


@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: caller or "anonymous")
def test_every_route_lets_a_caller_through_exactly_where_their_grants_reach(caller, world, app, session):
    urls = app.url_map.bind("localhost")
    sees_other_community = caller is not None and covers(API_USERS[caller][1], "other_community")
    wrong = []
    for route, side_name in itertools.product(ROUTES, SIDES):
        side = world.side(side_name)
        request = route.build(world, side)
        rule, _ = urls.match(request.path, request.method, return_rule=True)
        place = None if route.level is None else PLACES[side_name, route.level]
        want = route.expected(caller, place, world.signed_in_as(caller) == side.participant)
        before = None if want == ALLOWED else row_counts(session)
        response = world.send(request, caller)
        text = response.get_data().decode(errors="replace")  # read through: downloads are streamed, workbooks binary
        got = ALLOWED if 200 <= response.status_code < 300 else response.status_code
        if got == ALLOWED and request.method == "POST":
            world.spares.clear()
        case = f"{route.key} ({request.path}) on the {side_name} side"
        if route_key(request.method, rule.rule) != route.key:
            wrong.append(f"{case}: the request went to {route_key(request.method, rule.rule)}")
        if got != want:
            wrong.append(f"{case}: expected {want}, got {response.status_code} {text[:300]}")
        if before is not None and row_counts(session) != before:
            wrong.append(f"{case}: refused, yet it wrote")
        if not sees_other_community and OTHER_MARK in text:
            wrong.append(f"{case}: told someone who cannot see community C2 about it")
    assert not wrong, "\n".join(wrong)


# Nobody awards points to themself --------------------------------------------------------------


class Mine(NamedTuple):
    """What a caller who is also a participant has of their own, and the volunteer ``me`` beside them."""

    street: object
    me: int
    participant: int
    #: A patrol recorded for them by someone else.
    activity: int
    #: Points they spent on the reward shelf.
    spending: int


#: Writes that would award points to the caller's own participant account, and the action each needs.
SELF_AWARDS = {
    "record service": (
        Action.RECORD_SERVICE,
        lambda mine: post(
            "/api/v1/activities", patrol(mine.street.grid, mine.participant, "2026-05-06 09:00", "2026-05-06 10:00")
        ),
    ),
    "record an event with themself on the sheet": (
        Action.RECORD_SERVICE,
        lambda mine: post(
            "/api/v1/events",
            {
                key: value
                for key, value in patrol(
                    mine.street.grid, mine.participant, "2026-05-07 09:00", "2026-05-07 10:00"
                ).items()
                if key != "participant_id"
            }
            | {"title": "巡逻", "attendees": [{"participant_id": mine.me}, {"participant_id": mine.participant}]},
        ),
    ),
    "correct their own service upwards": (
        Action.CORRECT,
        lambda mine: post(
            f"/api/v1/activities/{mine.activity}/correction",
            {"reason": "多算一小时", "ended_at": "2026-05-08T12:00:00+08:00"},
        ),
    ),
    "reverse their own spending, keeping what it bought": (
        Action.CORRECT,
        lambda mine: post(f"/api/v1/transactions/{mine.spending}/reversal", {"reason": "录入错误"}),
    ),
}
#: Whoever records service in the grid where the volunteers live.
RECORDERS = [
    name
    for name, (role, scope) in API_USERS.items()
    if Action.RECORD_SERVICE in GRANTS[Role(role)] and covers(scope, "grid")
]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_nobody_who_records_service_awards_points_to_their_own_participant_account(
    recorder, api, session, write, street, desk, make_volunteer
):
    account_id = make_volunteer(street.grid, name="王自己")
    own = participant_of(session, account_id)

    def is_also_a_participant():
        user = session.execute(select(AppUser).where(AppUser.username == f"api-{recorder}")).scalar_one()
        user.participant_id = own

    write(is_also_a_participant)
    activity = desk.record(service(own, "2026-05-08 09:00", "10:00")).activity.id

    def earn_and_spend():
        earn(session, desk.staff_id, street.community, account_id, 50, dt.date(2026, 5, 9))
        return spend(
            session, actor_id=desk.staff_id, org_id=street.community, account_id=account_id, amount=5, key="spent"
        )

    spending = write(earn_and_spend).transaction.id
    mine = Mine(street, api.me, own, activity, spending)
    granted = GRANTS[Role(API_USERS[recorder][0])]
    before = row_counts(session)
    for what, (action, build) in SELF_AWARDS.items():
        if action in granted:
            request = build(mine)
            response = api.post(request.path, request.body, as_=recorder)
            assert (response.status_code, response.json.get("code")) == (403, "not_allowed"), (what, response.json)
    assert row_counts(session) == before
    others = api.post(
        "/api/v1/activities", patrol(street.grid, api.me, "2026-05-06 09:00", "2026-05-06 10:00"), as_=recorder
    )
    assert others.status_code == 201


# Routes outside the matrix ---------------------------------------------------------------------


def test_the_docs_and_the_openapi_document_are_open_and_say_every_matrix_route_needs_a_token(client):
    for path in ("/api/v1/docs", "/api/v1/docs/static/swagger-ui.css", "/healthz", "/readyz"):
        with client.get(path) as response:
            assert response.status_code == 200, path
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    paths = document.json["paths"]
    assert document.json["security"] == [{"bearer": []}]
    for route in ROUTES:
        method, rule = route.key.split(" ")
        operation = paths[rule.replace("<", "{").replace(">", "}")][method.lower()]
        assert operation.get("security") != [], route.key
    assert paths["/api/v1/auth/login"]["post"]["security"] == []


def test_me_names_each_caller_with_their_own_roles_and_nobody_signed_out(api, street):
    for caller, (role, org) in API_USERS.items():
        me = api.get("/api/v1/auth/me", as_=caller).json
        assert me["username"] == f"api-{caller}"
        assert me["participant_id"] == {"volunteer": api.me, "volunteer2": api.other_volunteer}.get(caller)
        assert [(line["role"], line["org_id"]) for line in me["roles"]] == [(role, org and getattr(street, org))]
    assert api.get("/api/v1/auth/me", as_=None).status_code == 401


def test_logging_out_revokes_the_callers_token_and_nobody_elses(api):
    assert api.post("/api/v1/auth/logout", as_="staff", key=None).status_code == 204
    assert api.get("/api/v1/auth/me", as_="staff").status_code == 401
    assert api.post("/api/v1/auth/logout", as_="staff", key=None).status_code == 401
    assert all(api.get("/api/v1/auth/me", as_=caller).status_code == 200 for caller in API_USERS if caller != "staff")


def test_signing_in_needs_no_token_and_gives_one_with_the_users_roles_only(api, client, session, write, street):
    write(
        lambda: create_user(
            session,
            username="he-ping",
            display_name="和平社区干事",
            password=PASSWORD,
            role="community_staff",
            org=session.get(OrgNode, street.other_community),
        )
    )
    login = client.post("/api/v1/auth/login", json={"username": "he-ping", "password": PASSWORD})
    assert login.status_code == 201
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    assert client.get(f"/api/v1/orgs/{street.other_community}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/orgs/{street.community}", headers=headers).status_code == 404


def test_a_certificate_is_checked_without_signing_in_and_shows_only_what_it_prints(world, client, session):
    certificate = session.get(ServiceCertificate, world.own.certificate)
    check = client.get(f"/api/v1/certificate-checks/{certificate.code}")
    assert check.status_code == 200
    assert (check.json["number"], check.json["holder"], check.json["matches_ledger"]) == (
        certificate.number,
        "李*",
        True,
    )
    assert "participant_id" not in check.json and "李明" not in check.get_data(as_text=True)
    assert client.get("/api/v1/certificate-checks/NO-SUCH-CODE").status_code == 404
