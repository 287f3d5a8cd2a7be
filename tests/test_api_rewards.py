"""The reward shelf over HTTP: rewards and stock, donations, redemptions and their refusals, the liability view.

Community C1's staff run C1's shelf and the street admin the street's, which serves C1 and
C2 too. The volunteer ``me`` has 50 points unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ledger.transactions import participant_account
from tests.refusals import row_counts
from tests.refusals import counts_without_replays

#: The shelves' own today: their orgs keep Shanghai time, a day ahead of UTC after 16:00 UTC.
TODAY = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
def offer(api, street):
    """Return a callable offering a reward (on C1's shelf, as its staff, by default); it returns the response."""

    def post(name="大米 5kg", *, shelf=None, as_="staff", **terms):
        body = {"name": name, "price_points": 20, "stock": 3, "unit_value_yuan": 40, **terms}
        return api.post(f"/api/v1/orgs/{shelf or street.community}/rewards", body, as_=as_)

    return post


@pytest.fixture
def rice(offer) -> dict:
    response = offer()
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def fifty_points(api, session, issue_points, default_rules) -> int:
    """Give ``me`` 50 points; return their account id."""
    account_id = participant_account(session, api.me).id
    issue_points(account_id, 50)
    return account_id


def redeem(api, reward_id, participant_id, *, as_="volunteer", key="fresh", **body):
    return api.post(f"/api/v1/rewards/{reward_id}/redemptions", {"participant_id": participant_id, **body}, as_=as_, key=key)


def balance(api) -> int:
    return api.get(f"/api/v1/participants/{api.me}/balance", as_="volunteer").json["balance"]


# Rewards and stock -------------------------------------------------------------------------


def test_staff_offer_rewards_and_a_participant_sees_their_shelf_and_those_above(api, offer, rice, street):
    assert (rice["org_id"], rice["stock"], rice["active_from"], rice["kind"], rice["limit_period"]) == (street.community, 3, TODAY.isoformat(), "goods", "ever")
    haircut = offer("理发", shelf=street.street, as_="street", kind="service", price_points=10, stock=None).json
    catalogue = api.get(f"/api/v1/orgs/{street.community}/rewards", as_="volunteer").json
    assert (catalogue["org_id"], catalogue["on"]) == (street.community, TODAY.isoformat())
    assert [(item["name"], item["org_name"], item["stock"]) for item in catalogue["items"]] == [("理发", "城东街道", None), ("大米 5kg", "幸福社区", 3)]
    assert [item["id"] for item in api.get(f"/api/v1/orgs/{street.other_community}/rewards", as_="staff2").json["items"]] == [haircut["id"]]
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    assert api.get(f"/api/v1/orgs/{street.community}/rewards", as_="staff", on=yesterday).json["items"] == []
    assert api.get(f"/api/v1/orgs/{street.community}/rewards", as_="staff2").status_code == 404


def test_a_shelf_is_run_by_its_own_orgs_staff(api, offer, rice, street, session):
    before = counts_without_replays(session)
    assert offer("食用油", as_="volunteer").status_code == 403
    assert offer("食用油", shelf=street.grid, as_="grid").status_code == 403
    assert offer("食用油", shelf=street.street).status_code == 404  # the street's shelf is the street's
    assert offer("食用油", as_="staff2").status_code == 404
    same_name = offer()
    assert same_name.status_code == 409 and same_name.json["code"] == "already_exists" and "name" in same_name.json["errors"]
    assert counts_without_replays(session) == before


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"price_points": 0}, "price_points"),
        ({"price_points": "20"}, "price_points"),
        ({"kind": "cash"}, "kind"),
        ({"stock": -1}, "stock"),
        ({"limit_period": "week"}, "limit_period"),
        ({"min_star_level": 11}, "min_star_level"),
        ({"active_to": (TODAY - dt.timedelta(days=1)).isoformat()}, "active_to"),
        ({"name": ""}, "name"),
        ({"org_id": 1}, "org_id"),
        ({"balance": 100}, "balance"),
    ],
)
def test_a_bad_reward_is_refused_naming_the_field(offer, session, terms, field):
    before = counts_without_replays(session)
    response = offer(**({"name": "食用油"} | terms))
    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert counts_without_replays(session) == before


def test_staff_restock_a_counted_reward_and_its_stock_grows(api, offer, rice, session):
    unlimited = offer("理发", stock=None).json
    restocked = api.post(f"/api/v1/rewards/{rice['id']}/restock", {"quantity": 5}, as_="staff")
    assert restocked.status_code == 201 and restocked.json["stock"] == 8
    before = counts_without_replays(session)
    assert api.post(f"/api/v1/rewards/{rice['id']}/restock", {"quantity": 5}, as_="volunteer").status_code == 403
    assert api.post(f"/api/v1/rewards/{rice['id']}/restock", {"quantity": 5}, as_="staff2").status_code == 404
    for body, field in [({"quantity": 0}, "quantity"), ({"quantity": 1, "stock": 9}, "stock"), ({}, "quantity")]:
        response = api.post(f"/api/v1/rewards/{rice['id']}/restock", body, as_="staff")
        assert response.status_code == 422 and field in response.json["errors"], response.json
    response = api.post(f"/api/v1/rewards/{unlimited['id']}/restock", {"quantity": 1}, as_="staff")
    assert response.status_code == 422 and "reward_id" in response.json["errors"]
    assert counts_without_replays(session) == before


def test_a_co_building_units_donation_adds_stock_and_earns_the_unit_points(api, rice, street, default_rules):
    unit = api.post(
        "/api/v1/co-building-units",
        {"community_id": street.community, "name": "城东超市", "unit_kind": "enterprise", "reported_on": "2026-01-05"},
        as_="staff",
    ).json
    body = {
        "unit_participant_id": unit["id"],
        "quantity": 10,
        "value_yuan": 400,
        "handed_over_from": "2026-03-04T09:00:00+08:00",
        "handed_over_until": "2026-03-04T10:00:00+08:00",
    }
    donated = api.post(f"/api/v1/rewards/{rice['id']}/donations", body, as_="staff", key="gift")
    assert donated.status_code == 201, donated.json
    assert donated.json["reward"]["stock"] == 13
    activity = donated.json["activity"]
    assert (activity["participant_id"], activity["activity_type"], activity["quantity"], activity["scoring"]["points"]) == (unit["id"], "unit_donation", 400, 4)
    again = api.post(f"/api/v1/rewards/{rice['id']}/donations", body, as_="staff", key="gift")
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == donated.json
    not_a_unit = api.post(f"/api/v1/rewards/{rice['id']}/donations", body | {"unit_participant_id": api.me}, as_="staff")
    assert not_a_unit.status_code == 422 and "unit_participant_id" in not_a_unit.json["errors"]
    assert api.post(f"/api/v1/rewards/{rice['id']}/donations", body, as_="volunteer").status_code == 403


# Redemptions -------------------------------------------------------------------------------


def test_a_volunteer_redeems_for_themselves_and_a_retry_spends_nothing_more(api, rice, fifty_points, session):
    first = redeem(api, rice["id"], api.me, key="rice-1")
    assert first.status_code == 201, first.json
    assert (first.json["status"], first.json["points"], first.json["quantity"], first.json["participant_id"]) == ("requested", 20, 1, api.me)
    written = row_counts(session)
    again = redeem(api, rice["id"], api.me, key="rice-1")
    assert (again.headers.get("Idempotent-Replayed"), again.json) == ("true", first.json) and row_counts(session) == written
    assert balance(api) == 30
    assert api.get(f"/api/v1/orgs/{rice['org_id']}/rewards", as_="volunteer").json["items"][0]["stock"] == 2
    staff_for_them = redeem(api, rice["id"], api.me, as_="staff", quantity=1)
    assert staff_for_them.status_code == 201 and staff_for_them.json["requested_by_id"] != first.json["requested_by_id"]
    assert balance(api) == 10


def test_a_redemption_short_of_points_or_stock_is_a_conflict_naming_what_is_short(api, rice, fifty_points, session):
    before = counts_without_replays(session)
    short_of_stock = redeem(api, rice["id"], api.me, quantity=4)
    assert short_of_stock.status_code == 409 and short_of_stock.json["code"] == "out_of_stock"
    assert "quantity" in short_of_stock.json["errors"]
    short_of_points = redeem(api, rice["id"], api.me, quantity=3)
    assert short_of_points.status_code == 409 and short_of_points.json["code"] == "insufficient_balance"
    assert "10 short" in short_of_points.json["detail"] and "points" in short_of_points.json["errors"]
    assert counts_without_replays(session) == before
    assert balance(api) == 50


def test_nobody_redeems_for_someone_outside_their_reach(api, offer, rice, fifty_points, street, session):
    elsewhere = offer("食用油", shelf=street.other_community, as_="staff2").json
    before = counts_without_replays(session)
    for as_, reward_id, participant_id in [
        ("volunteer", rice["id"], api.other_volunteer),
        ("volunteer2", rice["id"], api.me),
        ("staff2", rice["id"], api.me),
        ("volunteer", elsewhere["id"], api.me),  # C2's shelf does not serve C1
    ]:
        response = redeem(api, reward_id, participant_id, as_=as_)
        assert response.status_code == 404, (as_, response.json)
    assert redeem(api, rice["id"], api.me, as_="grid").status_code == 403
    for body, field in [({"quantity": 0}, "quantity"), ({"balance": 100}, "balance"), ({"status": "fulfilled"}, "status")]:
        response = redeem(api, rice["id"], api.me, **body)
        assert response.status_code == 422 and field in response.json["errors"], response.json
    assert counts_without_replays(session) == before


def test_staff_hand_over_or_cancel_a_redemption_and_a_cancellation_refunds_by_reversal(api, rice, fifty_points, session):
    handed = redeem(api, rice["id"], api.me).json
    called_off = redeem(api, rice["id"], api.me).json
    assert balance(api) == 10
    before = counts_without_replays(session)
    # The grid worker sees the redemption of their grid's volunteer, but C1's shelf is outside their grid.
    for as_, status in [("volunteer", 403), ("auditor", 403), ("grid", 404), ("staff2", 404), ("volunteer2", 404)]:
        assert api.post(f"/api/v1/redemptions/{handed['id']}/fulfil", as_=as_).status_code == status, as_
        assert api.post(f"/api/v1/redemptions/{called_off['id']}/cancel", {"reason": "缺货"}, as_=as_).status_code == status, as_
    unknown = api.post(f"/api/v1/redemptions/{handed['id']}/fulfil", {"status": "fulfilled"}, as_="staff")
    assert unknown.status_code == 422 and "status" in unknown.json["errors"]
    assert counts_without_replays(session) == before

    fulfilled = api.post(f"/api/v1/redemptions/{handed['id']}/fulfil", as_="staff")
    assert fulfilled.status_code == 201 and fulfilled.json["status"] == "fulfilled" and fulfilled.json["fulfilled_at"]
    settled = api.post(f"/api/v1/redemptions/{handed['id']}/cancel", {"reason": "缺货"}, as_="staff")
    assert settled.status_code == 409 and settled.json["code"] == "redemption_settled"
    cancelled = api.post(f"/api/v1/redemptions/{called_off['id']}/cancel", {"reason": "缺货"}, as_="staff")
    assert cancelled.status_code == 201 and (cancelled.json["status"], cancelled.json["cancel_reason"]) == ("cancelled", "缺货")
    assert balance(api) == 30
    [refund] = api.get("/api/v1/transactions", as_="volunteer", kind="reverse").json["items"]
    assert (refund["reverses_id"], refund["memo"]) == (called_off["transaction_id"], "缺货")
    assert api.get(f"/api/v1/orgs/{rice['org_id']}/rewards", as_="staff").json["items"][0]["stock"] == 2


def test_redemptions_are_listed_for_their_participant_and_their_staff(api, rice, fifty_points, issue_points, session, street):
    issue_points(participant_account(session, api.other_volunteer).id, 20)
    mine = redeem(api, rice["id"], api.me).json
    theirs = redeem(api, rice["id"], api.other_volunteer, as_="volunteer2").json

    def ids(as_="staff", **query):
        response = api.get("/api/v1/redemptions", as_=as_, **query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids() == [theirs["id"], mine["id"]] == ids("street") == ids("auditor")
    assert ids("volunteer") == [mine["id"]] and ids("volunteer2") == [theirs["id"]] and ids("staff2") == []
    assert ids(participant_id=api.me) == [mine["id"]] and ids(status="fulfilled") == [] and ids(reward_id=rice["id"], page_size=1) == [theirs["id"]]
    assert ids(org_id=street.grid) == [theirs["id"], mine["id"]]
    assert api.get("/api/v1/redemptions", as_="volunteer", participant_id=api.other_volunteer).status_code == 404
    for query, field in [({"status": "handed"}, "status"), ({"reward_id": "rice"}, "reward_id")]:
        response = api.get("/api/v1/redemptions", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"]


def test_who_holds_a_priority_is_listed_for_staff(api, offer, fifty_points):
    priority = offer("养老服务优先", kind="priority", price_points=10, stock=None).json
    redeem(api, priority["id"], api.me)
    holders = api.get(f"/api/v1/rewards/{priority['id']}/priority-holders", as_="staff")
    assert holders.status_code == 200
    assert [(h["participant_id"], h["quantity"], h["status"]) for h in holders.json["items"]] == [(api.me, 1, "requested")]
    assert api.get(f"/api/v1/rewards/{priority['id']}/priority-holders", as_="volunteer").status_code == 404
    goods = offer("毛巾").json
    response = api.get(f"/api/v1/rewards/{goods['id']}/priority-holders", as_="staff")
    assert response.status_code == 422 and "reward_id" in response.json["errors"]


def test_the_liability_weighs_points_held_against_the_stock_on_the_shelves(api, rice, fifty_points, street):
    liability = api.get(f"/api/v1/orgs/{street.community}/reward-liability", as_="staff")
    assert liability.status_code == 200
    assert liability.json == {
        "org_id": street.community,
        "points_outstanding": 50,
        "stock_points": 60,
        "stock_yuan": 120,
        "unlimited_rewards": 0,
        "unvalued_rewards": 0,
        "coverage_percent": 120,
    }
    statuses = {who: api.get(f"/api/v1/orgs/{street.community}/reward-liability", as_=who).status_code for who in ("auditor", "street", "volunteer", "staff2")}
    assert statuses == {"auditor": 200, "street": 200, "volunteer": 404, "staff2": 404}
