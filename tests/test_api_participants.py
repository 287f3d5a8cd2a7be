"""Participants, employer units, teams and users through the HTTP API: who may do what, and what they see."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from ledger.models import Account, AppUser, OrgNode, Participant
from ledger.orgs import create_org_node
from ledger.participants import register_co_building_unit, register_employer_unit
from ledger.users import grant_role
from tests.conftest import valid_id_number
from tests.refusals import row_counts

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)


def volunteer_body(org_id: int, **changes) -> dict:
    """Return a valid volunteer registration, with a fresh ID number and volunteer number."""
    return {
        "org_id": org_id,
        "real_name": "王芳",
        "id_number": valid_id_number(),
        "volunteer_number": f"API{next(_numbers):05d}",
        "registered_on": "2025-04-01",
    } | changes


def report_in(resident: dict, employer_unit_id: int) -> dict:
    """Return the party-member report-in of the resident in a volunteer registration."""
    return {key: resident[key] for key in ("org_id", "real_name", "id_number")} | {
        "employer_unit_id": employer_unit_id,
        "reported_on": "2025-05-04",
    }


def unit_body(community_id: int, **changes) -> dict:
    unit = {"community_id": community_id, "name": "城东中学", "unit_kind": "enterprise", "reported_on": "2025-03-01"}
    return unit | changes


def user_body(username: str, role: str, org_id: int | None, **changes) -> dict:
    user = {"username": username, "display_name": username, "password": PASSWORD, "role": role, "org_id": org_id}
    return user | changes


def participant_made(session, make_volunteer, org_id: int) -> int:
    """Register a volunteer in ``org_id`` and return their participant id."""
    return session.get(Account, make_volunteer(org_id=org_id)).participant_id


def user_ids(session) -> dict[str, int]:
    return dict(session.execute(select(AppUser.username, AppUser.id)).all())


@dataclass(frozen=True)
class Employers:
    """Employer unit ids registered at the district, in community C1 and in community C2."""

    district: int
    community: int
    other_community: int


@pytest.fixture
def employers(session, write, street) -> Employers:
    where = {street.district: "区供电公司", street.community: "幸福超市", street.other_community: "和平医院"}

    def register():
        orgs = (session.get(OrgNode, org_id) for org_id in where)
        return Employers(*(register_employer_unit(session, org=org, name=where[org.id]).id for org in orgs))

    return write(register)


@pytest.fixture
def school(session, write, street) -> int:
    """Return the participant id of a school that reported in to community C1."""
    return write(
        lambda: register_co_building_unit(
            session,
            community=session.get(OrgNode, street.community),
            name="城东小学",
            unit_kind="public_institution",
            reported_on=dt.date(2025, 3, 1),
        ).id
    )


# Registering ----------------------------------------------------------------------------------


def test_staff_register_a_volunteer_and_only_the_masked_id_number_comes_back(api, street):
    body = volunteer_body(street.grid)
    created = api.post("/api/v1/volunteers", body, as_="staff")
    assert created.status_code == 201
    assert body["id_number"] not in created.get_data(as_text=True)
    record = created.json
    assert record["id_number_masked"] == body["id_number"][:6] + "*" * 8 + body["id_number"][-4:]
    assert record["kind"] == "person" and record["display_name"] == "王芳" and record["org_id"] == street.grid
    assert record["volunteer"] == {"volunteer_number": body["volunteer_number"], "registered_on": "2025-04-01"}
    assert record["party_member"] is None and record["unit"] is None and record["ranking_opt_out"] is False
    assert api.get(f"/api/v1/participants/{record['id']}", as_="grid").json == record


def test_a_party_member_reports_in_from_an_employer_registered_above_or_within_reach(api, street, employers):
    resident = volunteer_body(street.community)
    volunteer = api.post("/api/v1/volunteers", resident, as_="staff").json
    member = api.post("/api/v1/party-members", report_in(resident, employers.district), as_="staff")
    assert member.status_code == 201
    assert member.json["id"] == volunteer["id"]  # the same person, now with both roles
    assert member.json["party_member"] == {
        "employer_unit_id": employers.district,
        "employer_name": "区供电公司",
        "reported_on": "2025-05-04",
    }
    assert member.json["volunteer"] == volunteer["volunteer"]
    stranger = report_in(volunteer_body(street.community), employers.other_community)
    assert api.post("/api/v1/party-members", stranger, as_="staff").status_code == 404  # C2's employer is out of sight


def test_employer_units_are_registered_in_your_org_and_listed_from_your_subtree_and_above(api, street, employers):
    assert api.post("/api/v1/employer-units", {"org_id": street.grid, "name": "网格物业"}, as_="grid").status_code == 403
    above_the_street = {"org_id": street.district, "name": "区医院"}
    assert api.post("/api/v1/employer-units", above_the_street, as_="street").status_code == 404
    created = api.post("/api/v1/employer-units", {"org_id": street.community, "name": "网格物业"}, as_="staff")
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "org_id": street.community, "name": "网格物业", "credit_code": None}

    def names(as_, **query):
        return {item["name"] for item in api.get("/api/v1/employer-units", as_=as_, **query).json["items"]}

    assert names("staff") == {"区供电公司", "幸福超市", "网格物业"}
    assert names("staff2") == {"区供电公司", "和平医院"}
    assert names("street") == {"区供电公司", "幸福超市", "和平医院", "网格物业"}
    assert names("staff", name="幸福") == {"幸福超市"}
    assert names("volunteer") == set()


def test_a_co_building_unit_reports_in_to_a_community_only(api, street):
    created = api.post("/api/v1/co-building-units", unit_body(street.community), as_="staff")
    assert created.status_code == 201
    assert (created.json["kind"], created.json["id_number_masked"], created.json["volunteer"]) == ("unit", None, None)
    assert created.json["unit"] == {"unit_kind": "enterprise", "credit_code": None, "reported_on": "2025-03-01"}
    assert api.post("/api/v1/co-building-units", unit_body(street.community), as_="staff").status_code == 409
    assert api.post("/api/v1/co-building-units", unit_body(street.grid), as_="staff").status_code == 422
    assert api.post("/api/v1/co-building-units", unit_body(street.other_community), as_="staff").status_code == 404


def test_who_may_register_and_where_and_refusals_write_nothing(api, session, street):
    before = row_counts(session)
    for role, org_id, status in [
        ("staff2", street.community, 404),  # another community's staff: C1 is out of sight
        ("grid", street.grid, 403),  # in scope, but grid workers record service, not people
        ("auditor", street.community, 403),
        ("volunteer", street.community, 403),
    ]:
        response = api.post("/api/v1/volunteers", volunteer_body(org_id), as_=role)
        assert response.status_code == status, role
    assert row_counts(session) == before
    assert api.post("/api/v1/volunteers", volunteer_body(street.street), as_="street").status_code == 422
    assert api.post("/api/v1/volunteers", volunteer_body(street.other_community), as_="street").status_code == 201


# Reading --------------------------------------------------------------------------------------


def test_a_volunteer_sees_only_themselves(api, street):
    mine = api.get("/api/v1/participants", as_="volunteer")
    assert [item["id"] for item in mine.json["items"]] == [api.me] and mine.json["page"]["total"] == 1
    assert api.get(f"/api/v1/participants/{api.me}", as_="volunteer").json["id_number_masked"].count("*") == 8
    assert api.get(f"/api/v1/participants/{api.other_volunteer}", as_="volunteer").status_code == 404
    assert api.get("/api/v1/participants", as_="volunteer", org_id=street.community).json["items"][0]["id"] == api.me


def test_staff_list_their_participants_by_org_category_name_and_volunteer_number(api, street, make_volunteer, school):
    make_volunteer(org_id=street.other_community, name="赵强")

    def ids(as_="staff", **query):
        return {item["id"] for item in api.get("/api/v1/participants", as_=as_, **query).json["items"]}

    everyone = {api.me, api.other_volunteer}
    assert ids() == everyone | {school}
    assert ids(category="volunteer") == everyone and ids(category="unit") == {school}
    assert ids(category="party_member") == set()
    assert ids(name="城东") == {school} and ids(name="赵") == set() and ids(as_="staff2", name="赵") != set()
    number = api.get(f"/api/v1/participants/{api.me}", as_="staff").json["volunteer"]["volunteer_number"]
    assert ids(volunteer_number=number) == {api.me}
    assert ids(as_="grid") == everyone and ids(org_id=street.grid) == everyone
    assert api.get("/api/v1/participants", as_="staff", org_id=street.other_community).status_code == 404
    first = api.get("/api/v1/participants", as_="street", page_size=2).json
    assert len(first["items"]) == 2 and first["page"] == {"page": 1, "page_size": 2, "total": 4}
    assert api.get(f"/api/v1/participants/{api.me}", as_="staff2").status_code == 404


# Ranking visibility ---------------------------------------------------------------------------


def test_a_volunteer_hides_from_rankings_themself_or_staff_do_it_for_them(api, session):
    path = f"/api/v1/participants/{api.me}/ranking-visibility"
    hidden = api.post(path, {"hide": True}, as_="volunteer")
    assert hidden.status_code == 200 and hidden.json["ranking_opt_out"] is True
    someone_else = f"/api/v1/participants/{api.other_volunteer}/ranking-visibility"
    assert api.post(someone_else, {"hide": True}, as_="volunteer").status_code == 404
    for role, status in (("staff2", 404), ("grid", 403), ("auditor", 403)):
        assert api.post(path, {"hide": False}, as_=role).status_code == status, role
    assert session.get(Participant, api.me).ranking_opt_out is True
    assert api.post(path, {"hide": False}, as_="staff").json["ranking_opt_out"] is False
    assert session.get(Participant, api.other_volunteer).ranking_opt_out is False


# Teams ----------------------------------------------------------------------------------------


def test_a_team_is_founded_joined_and_shown_with_its_members(api, street, make_volunteer, session):
    founded = {"org_id": street.community, "name": "巡逻队", "founded_on": "2024-06-01"}
    team = api.post("/api/v1/teams", founded, as_="staff")
    assert team.status_code == 201 and team.json == {"id": team.json["id"]} | founded
    one_team, members = f"/api/v1/teams/{team.json['id']}", f"/api/v1/teams/{team.json['id']}/members"
    joined = api.post(members, {"participant_id": api.me, "joined_on": "2025-04-01"}, as_="staff")
    assert joined.status_code == 201
    assert joined.json["members"] == [{"participant_id": api.me, "display_name": "李明", "joined_on": "2025-04-01"}]
    assert api.get(one_team, as_="street").json == joined.json
    for role, status in (("grid", 404), ("staff2", 404), ("volunteer", 404)):  # the team is above the grid
        assert api.get(one_team, as_=role).status_code == status, role
    another = {"participant_id": api.other_volunteer, "joined_on": "2025-04-01"}
    for role, status in (("staff2", 404), ("volunteer", 403), ("auditor", 403)):
        assert api.post(members, another, as_=role).status_code == status, role
    assert api.post("/api/v1/teams", founded, as_="staff").status_code == 409
    stranger_id = participant_made(session, make_volunteer, street.other_community)
    stranger = {"participant_id": stranger_id, "joined_on": "2025-04-01"}
    assert api.post(members, stranger, as_="staff").status_code == 404  # not theirs to see
    assert api.post(members, stranger, as_="street").status_code == 422  # seen, but of another community


def test_teams_are_listed_within_your_subtrees(api, street):
    for org_id, name, as_ in ((street.community, "巡逻队", "staff"), (street.other_community, "义诊队", "staff2")):
        assert api.post("/api/v1/teams", {"org_id": org_id, "name": name}, as_=as_).status_code == 201

    def names(as_, **query):
        return [item["name"] for item in api.get("/api/v1/teams", as_=as_, **query).json["items"]]

    assert names("staff") == ["巡逻队"] and names("staff2") == ["义诊队"] and sorted(names("street")) == ["义诊队", "巡逻队"]
    assert names("street", org_id=street.other_community) == ["义诊队"] and names("volunteer") == []
    assert api.get("/api/v1/teams", as_="staff", org_id=street.other_community).status_code == 404


# Users ----------------------------------------------------------------------------------------


def test_a_street_admin_creates_users_in_the_street_and_only_a_system_admin_creates_system_admins(api, client, street):
    body = user_body("li.staff", "community_staff", street.community, display_name="李社工")
    created = api.post("/api/v1/users", body, as_="street")
    assert created.status_code == 201
    assert created.json == {
        "id": created.json["id"],
        "username": "li.staff",
        "display_name": "李社工",
        "participant_id": None,
        "is_active": True,
        "roles": [{"role": "community_staff", "org_id": street.community}],
    }
    assert "password" not in created.get_data(as_text=True) and "argon2" not in created.get_data(as_text=True)
    assert client.post("/api/v1/auth/login", json={"username": "li.staff", "password": PASSWORD}).status_code == 201
    assert api.post("/api/v1/users", body, as_="street").status_code == 409  # never a takeover of an existing name
    root = user_body("root2", "system_admin", None)
    assert api.post("/api/v1/users", root, as_="street").status_code == 403
    assert api.post("/api/v1/users", user_body("d1", "street_admin", street.district), as_="street").status_code == 404
    assert api.post("/api/v1/users", user_body("s1", "grid_worker", street.grid), as_="staff").status_code == 403
    assert api.post("/api/v1/users", root, as_="admin").json["roles"] == [{"role": "system_admin", "org_id": None}]


def test_a_volunteer_user_is_linked_to_a_participant_once_and_inside_the_roles_org(
    api, street, make_volunteer, session
):
    body = user_body("wang", "volunteer", street.community)
    assert api.post("/api/v1/users", body | {"participant_id": api.me}, as_="street").status_code == 409
    stranger = participant_made(session, make_volunteer, street.other_community)
    refused = api.post("/api/v1/users", body | {"participant_id": stranger}, as_="street")
    assert refused.status_code == 422 and "participant_id" in refused.json["errors"]
    in_their_community = body | {"participant_id": stranger, "org_id": street.other_community}
    linked = api.post("/api/v1/users", in_their_community, as_="street")
    assert linked.status_code == 201 and linked.json["participant_id"] == stranger


def test_users_are_listed_with_only_the_roles_within_your_reach(api, street, session, write):
    def street_admin_elsewhere_too():
        district = session.get(OrgNode, street.district)
        other_street = create_org_node(session, code="S2", name="城西街道", kind="street", parent=district)
        grid_worker = session.scalar(select(AppUser).where(AppUser.username == "api-grid"))
        grant_role(session, user=grid_worker, role="street_admin", org=other_street)

    write(street_admin_elsewhere_too)
    listed = {user["username"]: user for user in api.get("/api/v1/users", as_="street").json["items"]}
    assert "api-admin" not in listed and {"api-staff", "api-volunteer", "api-auditor"} <= set(listed)
    assert listed["api-grid"]["roles"] == [{"role": "grid_worker", "org_id": street.grid}]
    everyone = {user["username"]: user for user in api.get("/api/v1/users", as_="admin", page_size=200).json["items"]}
    assert len(everyone["api-grid"]["roles"]) == 2 and "api-admin" in everyone
    assert api.get("/api/v1/users", as_="staff").json["items"] == []


def test_revoking_a_users_tokens_signs_them_out_everywhere(api, session):
    ids = user_ids(session)
    assert api.post(f"/api/v1/users/{ids['api-volunteer']}/tokens/revoke", as_="staff").status_code == 403
    assert api.post(f"/api/v1/users/{ids['api-staff']}/tokens/revoke", as_="staff2").status_code == 404
    assert api.post(f"/api/v1/users/{ids['api-admin']}/tokens/revoke", as_="street").status_code == 404
    revoked = api.post(f"/api/v1/users/{ids['api-staff']}/tokens/revoke", as_="street")
    assert revoked.status_code == 200 and revoked.json == {"user_id": ids["api-staff"], "revoked": 1}
    assert api.get("/api/v1/participants", as_="staff").status_code == 401
    assert api.get("/api/v1/participants", as_="staff2").status_code == 200


# Bad input and idempotency --------------------------------------------------------------------


def test_bad_input_is_a_422_naming_the_field_and_nothing_is_a_500(api, street, session):
    volunteer = volunteer_body(street.community)
    user = user_body("x1", "community_staff", street.community)
    team = {"org_id": street.community, "name": "队"}
    visibility = f"/api/v1/participants/{api.me}/ranking-visibility"
    cases = [
        ("/api/v1/volunteers", volunteer | {"org_id": True}, "org_id"),
        ("/api/v1/volunteers", volunteer | {"org_id": "2"}, "org_id"),
        ("/api/v1/volunteers", volunteer | {"org_id": 2.5}, "org_id"),
        ("/api/v1/volunteers", volunteer | {"org_id": 10**40}, "org_id"),
        ("/api/v1/volunteers", volunteer | {"real_name": "长" * 101}, "real_name"),
        ("/api/v1/volunteers", volunteer | {"registered_on": "2025-02-30"}, "registered_on"),
        ("/api/v1/volunteers", volunteer | {"registered_on": 20250301}, "registered_on"),
        ("/api/v1/volunteers", volunteer | {"id_number": "110101199003071234"}, "id_number"),
        ("/api/v1/volunteers", volunteer | {"volunteer_number": "V 1"}, "volunteer_number"),
        ("/api/v1/volunteers", volunteer | {"balance": 100}, "balance"),
        ("/api/v1/volunteers", volunteer | {"status": "active"}, "status"),
        ("/api/v1/party-members", volunteer | {"hash": "ab"}, "hash"),
        ("/api/v1/co-building-units", unit_body(street.community, unit_kind="bank"), "unit_kind"),
        ("/api/v1/co-building-units", unit_body(street.community, org_id=street.community), "org_id"),
        ("/api/v1/employer-units", {"org_id": street.community, "name": "x" * 201}, "name"),
        ("/api/v1/employer-units", {"org_id": street.community, "name": "厂", "credit_code": "123"}, "credit_code"),
        (visibility, {"hide": 1}, "hide"),
        (visibility, {"hide": "true"}, "hide"),
        (visibility, {"hide": True, "org_id": 1}, "org_id"),
        ("/api/v1/teams", team | {"founded_on": "2024-13-01"}, "founded_on"),
        ("/api/v1/teams", team | {"name": ""}, "name"),
        ("/api/v1/users", user | {"role": "king"}, "role"),
        ("/api/v1/users", user | {"password": "short"}, "password"),
        ("/api/v1/users", user | {"password": "x" * 10_000}, "password"),
        ("/api/v1/users", user | {"org_id": None}, "org_id"),
        ("/api/v1/users", user | {"username": "Not Valid"}, "username"),
        ("/api/v1/users", user | {"participant_id": False}, "participant_id"),
    ]
    before = row_counts(session)
    for path, body, field in cases:
        response = api.post(path, body, as_="admin")
        assert response.status_code == 422 and field in response.json["errors"], (path, body, response.json)
    assert row_counts(session) == before
    for query, field in [
        ({"category": "friends"}, "category"),
        ({"page_size": "1000"}, "page_size"),
        ({"org_id": "abc"}, "org_id"),
        ({"org_id": "1e309"}, "org_id"),
        ({"name": "名" * 101}, "name"),
    ]:
        response = api.get("/api/v1/participants", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"], query
    huge = 10**30
    for path in (f"/api/v1/participants/{huge}", f"/api/v1/teams/{huge}", f"/api/v1/participants/{2**40}"):
        assert api.get(path, as_="admin").status_code == 404
    assert api.post(f"/api/v1/users/{huge}/tokens/revoke", as_="admin").status_code == 404
    no_team = api.post("/api/v1/teams/1/members", {"participant_id": api.me, "joined_on": "2025-04-01"}, as_="admin")
    assert no_team.status_code == 404


def test_every_post_needs_a_key_replays_its_first_answer_and_refuses_the_key_with_another_body(
    api, street, session, employers
):
    team = api.post("/api/v1/teams", {"org_id": street.community, "name": "巡逻队"}, as_="staff").json["id"]
    resident = volunteer_body(street.community)
    c1, grid = street.community, street.grid
    routes = [
        ("/api/v1/volunteers", volunteer_body(c1), volunteer_body(c1)),
        ("/api/v1/party-members", report_in(resident, employers.community), report_in(resident, employers.district)),
        ("/api/v1/co-building-units", unit_body(c1), unit_body(c1, name="城东小学")),
        ("/api/v1/employer-units", {"org_id": c1, "name": "甲厂"}, {"org_id": c1, "name": "乙厂"}),
        (f"/api/v1/participants/{api.me}/ranking-visibility", {"hide": True}, {"hide": False}),
        ("/api/v1/teams", {"org_id": c1, "name": "义诊队"}, {"org_id": c1, "name": "宣传队"}),
        (
            f"/api/v1/teams/{team}/members",
            {"participant_id": api.me, "joined_on": "2025-04-01"},
            {"participant_id": api.other_volunteer, "joined_on": "2025-04-01"},
        ),
        ("/api/v1/users", user_body("u1", "grid_worker", grid), user_body("u2", "grid_worker", grid)),
    ]
    for number, (path, body, other_body) in enumerate(routes):
        assert api.post(path, body, as_="street", key=None).status_code == 400, path
        first = api.post(path, body, as_="street", key=f"route-{number}")
        assert first.status_code in (200, 201), (path, first.json)
        written = row_counts(session)
        again = api.post(path, body, as_="street", key=f"route-{number}")
        assert (again.status_code, again.json) == (first.status_code, first.json), path
        assert again.headers["Idempotent-Replayed"] == "true"
        conflict = api.post(path, other_body, as_="street", key=f"route-{number}")
        assert conflict.status_code == 422 and conflict.json["code"] == "idempotency_conflict", path
        assert row_counts(session) == written, path
    ids = user_ids(session)
    revoke = f"/api/v1/users/{ids['api-grid']}/tokens/revoke"
    assert api.post(revoke, as_="street", key=None).status_code == 400
    assert api.post(revoke, as_="street", key="revoke").json["revoked"] == 1
    assert api.post(revoke, as_="street", key="revoke").headers["Idempotent-Replayed"] == "true"
    assert api.post(f"/api/v1/users/{ids['api-staff']}/tokens/revoke", as_="street", key="revoke").status_code == 422
