"""Standings over HTTP: rankings and own rank, star levels, annual titles and awards, units' points."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.models import OrgNode
from ledger.participants import register_co_building_unit
from ledger.rankings import set_ranking_opt_out
from ledger.transactions import participant_account
from tests.activity_fixtures import service
from tests.helpers import earn, participant_of
from tests.refusals import row_counts


@pytest.fixture
def ranked(api, session, write, street, actor_id, make_volunteer) -> int:
    """Give 2026 points in community C1: 50 to someone hidden from public rankings, 30 to ``me``, 20 to the other volunteer.

    Returns the hidden participant's id.
    """
    hidden_account = make_volunteer(name="王隐")
    for account_id, points in (
        (hidden_account, 50),
        (participant_account(session, api.me).id, 30),
        (participant_account(session, api.other_volunteer).id, 20),
    ):
        write(lambda: earn(session, actor_id, street.community, account_id, points, dt.date(2026, 4, 1), service_minutes=60))
    hidden = participant_of(session, hidden_account)
    write(lambda: set_ranking_opt_out(session, participant_id=hidden, opt_out=True))
    return hidden


def ranks(response) -> list[tuple[int, int]]:
    assert response.status_code == 200, response.json
    return [(row["rank"], row["participant_id"]) for row in response.json["items"]]


def test_a_volunteer_sees_the_public_ranking_and_staff_see_everyone(api, ranked, street):
    path = f"/api/v1/orgs/{street.community}/rankings"
    public = [(1, api.me), (2, api.other_volunteer)]
    assert ranks(api.get(path, as_="volunteer", period="2026")) == public
    forced = api.get(path, as_="volunteer", period="2026", public="false").json
    assert forced["public"] is True and [row["participant_id"] for row in forced["items"]] == [api.me, api.other_volunteer]
    staff = api.get(path, as_="staff", period="2026").json
    assert staff["public"] is False and staff["period"] == "2026-01-01..2026-12-31"
    assert [(row["rank"], row["participant_id"], row["points"]) for row in staff["items"]] == [(1, ranked, 50), (2, api.me, 30), (3, api.other_volunteer, 20)]
    assert ranks(api.get(path, as_="staff", period="2026", public="true")) == public
    second = api.get(path, as_="staff", period="2026", page=2, page_size=1).json
    assert second["items"][0]["participant_id"] == api.me and second["page"] == {"page": 2, "page_size": 1, "total": 3}
    assert ranks(api.get(path, as_="staff", period="2026-05")) == []


def test_rankings_are_read_within_your_scope_only(api, ranked, street):
    statuses = {
        (who, org): api.get(f"/api/v1/orgs/{org}/rankings", as_=who, period="2026").status_code
        for who, org in [
            ("staff2", street.community),
            ("volunteer", street.street),
            ("grid", street.community),
            ("grid", street.grid),
            ("auditor", street.street),
            ("staff", 2**40),
        ]
    }
    assert statuses == {
        ("staff2", street.community): 404,
        ("volunteer", street.street): 404,
        ("grid", street.community): 404,
        ("grid", street.grid): 200,
        ("auditor", street.street): 200,
        ("staff", 2**40): 404,
    }


def test_ranking_queries_refuse_bad_values_naming_them(api, street):
    for query, field in [
        ({"category": "hero"}, "category"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-03-10..2026-03-01"}, "period"),
        ({"period": "2026-01-01..2027-06-30"}, "period"),
        ({"period": "2" * 23}, "period"),
        ({"public": "perhaps"}, "public"),
        ({"page": "0"}, "page"),
        ({"page_size": "201"}, "page_size"),
    ]:
        response = api.get(f"/api/v1/orgs/{street.community}/rankings", as_="staff", **query)
        assert response.status_code == 422 and any(field in name for name in response.json["errors"]), (query, response.json)


def test_own_standing_shows_the_neighbours_and_only_to_the_volunteer_or_staff(api, ranked, street):
    path = f"/api/v1/orgs/{street.community}/rankings/participants/{api.me}"
    own = api.get(path, as_="volunteer", period="2026").json
    assert (own["me"]["rank"], own["above"], own["ranked"], own["category"]) == (1, [], 2, "volunteer")
    assert [row["participant_id"] for row in own["below"]] == [api.other_volunteer]
    staff = api.get(path, as_="staff", period="2026", neighbours="1").json
    assert (staff["me"]["rank"], [row["participant_id"] for row in staff["above"]], staff["public"]) == (2, [ranked], False)
    assert api.get(path, as_="staff", period="2025").json["me"] is None
    assert api.get(path, as_="volunteer2", period="2026").status_code == 404
    assert api.get(path, as_="staff2", period="2026").status_code == 404
    for query, field in [({"neighbours": "11"}, "neighbours"), ({"category": "hero"}, "category"), ({"period": "last year"}, "period")]:
        response = api.get(path, as_="staff", **query)
        assert response.status_code == 422 and any(field in name for name in response.json["errors"]), (query, response.json)


def test_stars_say_when_each_level_was_reached(api, session, write, street, actor_id, default_rules):
    account_id = participant_account(session, api.me).id
    for day in range(1, 6):  # twenty hours a day for five days: 100 hours on 5 January
        write(lambda: earn(session, actor_id, street.community, account_id, 10, dt.date(2026, 1, day), service_minutes=1200))
    record = api.get(f"/api/v1/participants/{api.me}/stars", as_="volunteer").json
    assert (record["level"], record["service_minutes"], record["reached"]) == (1, 6000, [{"level": 1, "reached_on": "2026-01-05"}])
    assert (record["next_level"], record["minutes_to_next"]) == (2, 200 * 60)
    for who, status in [("volunteer2", 404), ("staff2", 404), ("staff", 200), ("grid", 200)]:
        assert api.get(f"/api/v1/participants/{api.me}/stars", as_=who).status_code == status, who


@pytest.fixture
def busy_year(api, desk):
    """Ten weekdays of six hours' patrol for ``me`` in March 2026: an excellent volunteer's year."""
    for day in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13):
        desk.record(service(api.me, f"2026-03-{day:02} 09:00", "15:00"))


def test_staff_see_who_qualifies_for_each_title_criterion_by_criterion(api, busy_year, street):
    path = f"/api/v1/orgs/{street.community}/titles"
    reports = api.get(path, as_="staff", year="2026").json["items"]
    assert {report["title_code"] for report in reports} == {"excellent_volunteer", "excellent_party_member", "excellent_unit"}
    [volunteers] = api.get(path, as_="staff", year="2026", title="excellent_volunteer").json["items"]
    [candidate] = volunteers["candidates"]
    assert (candidate["participant_id"], candidate["eligible"], volunteers["title_name"]) == (api.me, True, "优秀志愿者")
    assert {c["criterion"]: (c["achieved"], c["met"]) for c in candidate["criteria"]}["min_hours"] == (60 * 60, True)
    for who, query, status in [
        ("volunteer", {"year": "2026"}, 403),
        ("staff2", {"year": "2026"}, 404),
        ("staff", {"year": "2026", "title": "best_neighbour"}, 404),
        ("staff", {}, 422),
        ("staff", {"year": "1999"}, 422),
        ("staff", {"year": "20x6"}, 422),
        ("staff", {"year": "2026", "title": "t" * 41}, 422),
    ]:
        assert api.get(path, as_=who, **query).status_code == status, (who, query)


def test_a_street_admin_awards_a_title_once_and_a_retry_writes_nothing_more(api, busy_year, street, session):
    path = f"/api/v1/orgs/{street.community}/titles/excellent_volunteer/awards"
    before = row_counts(session)
    assert api.post(path, {"year": 2026}, as_="street", key=None).status_code == 400
    for who, status in [("staff", 403), ("auditor", 403), ("volunteer", 403), ("staff2", 404)]:
        assert api.post(path, {"year": 2026}, as_=who).status_code == status, who
    for body, field in [
        ({"year": "2026"}, "year"),
        ({"year": True}, "year"),
        ({"year": 2026.5}, "year"),
        ({"year": 2101}, "year"),
        ({}, "year"),
        ({"year": 2026, "org_id": 1}, "org_id"),
        ({"year": 2026, "status": "granted"}, "status"),
    ]:
        response = api.post(path, body, as_="street")
        assert response.status_code == 422 and field in response.json["errors"], (body, response.json)
    assert row_counts(session) | {"idempotency_record": 0} == before | {"idempotency_record": 0}

    first = api.post(path, {"year": 2026}, as_="street", key="honours-2026")
    assert first.status_code == 201 and [(a["participant_id"], a["year"]) for a in first.json["items"]] == [(api.me, 2026)]
    written = row_counts(session)
    again = api.post(path, {"year": 2026}, as_="street", key="honours-2026")
    assert (again.headers.get("Idempotent-Replayed"), again.json) == ("true", first.json) and row_counts(session) == written
    assert api.post(path, {"year": 2025}, as_="street", key="honours-2026").status_code == 422
    assert api.post(path, {"year": 2026}, as_="street").json["items"] == []  # who holds it keeps it, once
    assert api.post(f"/api/v1/orgs/{street.community}/titles/best_neighbour/awards", {"year": 2026}, as_="street").status_code == 404


def test_staff_see_co_building_units_points_by_kind(api, desk, session, write, street):
    community = session.get(OrgNode, street.community)
    unit = write(
        lambda: register_co_building_unit(
            session, community=community, name="锦绣物业", unit_kind="property_company", reported_on=dt.date(2025, 1, 2)
        ).id
    )
    desk.record(service(unit, "2026-04-01 10:00", "11:00", "unit_report_in"), org_id=street.community)
    body = api.get(f"/api/v1/orgs/{street.street}/unit-points", as_="street", year="2026").json
    assert body["items"] == [{"participant_id": unit, "name": "锦绣物业", "total": 50, "by_kind": {"unit_report_in": 50}}]
    for who, org, query, status in [
        ("staff", street.community, {"year": "2026"}, 200),
        ("volunteer", street.community, {"year": "2026"}, 403),
        ("staff2", street.community, {"year": "2026"}, 404),
        ("staff", street.community, {"year": "2101"}, 422),
    ]:
        assert api.get(f"/api/v1/orgs/{org}/unit-points", as_=who, **query).status_code == status, (who, query)
