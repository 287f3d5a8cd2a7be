"""Orders over HTTP: from posting to points, refusals that name their reason, scopes, masking and the deadline job.

Orders are posted now, with a deadline a month ahead, in the community C1 of the API users;
its volunteer ``me`` claims and delivers, its staff confirm. The deadline job's test sets its
order up through the service, a year back, since no one may post a deadline in the past.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ledger.models import AppUser, OrgNode, Transaction
from ledger.orders import claim_order, post_order
from ledger.participants import create_team
from ledger.users import grant_role
from tests.activity_fixtures import at
from tests.refusals import counts_without_replays, row_counts

DEADLINE = (dt.date.today() + dt.timedelta(days=30)).isoformat()


@pytest.fixture
def orders(api, street, default_rules):
    """Return a callable posting a micro-wish in C1 as staff (published unless told otherwise); it returns the response."""

    def post(*, as_="staff", **changes):
        body = {
            "org_id": street.community,
            "kind": "micro_wish",
            "title": "给独居老人买米",
            "activity_type": "micro_wish",
            "deadline": DEADLINE,
            "beneficiary_group": "elderly_living_alone",
            "beneficiary_name": "王秀英",
            "beneficiary_contact": "13800000000",
            "publish": True,
            **changes,
        }
        return api.post("/api/v1/orders", body, as_=as_)

    return post


@pytest.fixture
def order(orders) -> dict:
    response = orders()
    assert response.status_code == 201, response.json
    return response.json


def claim(api, order_id, participant_id, *, as_="volunteer", **kwargs):
    return api.post(f"/api/v1/orders/{order_id}/claims", {"participant_id": participant_id}, as_=as_, **kwargs)


def delivery(order: dict, **changes) -> dict:
    """Return a delivery served from the order's posting until now."""
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return {"served_from": order["created_at"], "served_until": now, "note": "米已送到", **changes}


@pytest.fixture
def delivered(api, order) -> int:
    """Return the id of the volunteer ``me``'s claim on the order, delivered."""
    claim_id = claim(api, order["id"], api.me).json["event"]["claim_id"]
    response = api.post(f"/api/v1/order-claims/{claim_id}/deliver", delivery(order), as_="volunteer")
    assert response.status_code == 201, response.json
    return claim_id


def transaction_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Transaction))


# From posting to points --------------------------------------------------------------------


def test_an_order_goes_from_draft_to_points_and_confirming_again_posts_nothing_more(api, orders, session):
    posted = orders(publish=False)
    assert posted.status_code == 201, posted.json
    order_id = posted.json["id"]
    assert (posted.json["state"], posted.json["places_left"], posted.json["history"]) == ("draft", 1, [])
    published = api.post(f"/api/v1/orders/{order_id}/publish", as_="staff")
    assert published.status_code == 201, published.json
    assert (published.json["event"]["happening"], published.json["order"]["state"]) == ("published", "published")

    claimed = claim(api, order_id, api.me)
    assert claimed.status_code == 201, claimed.json
    [line] = claimed.json["order"]["claims"]
    assert (line["claimant_id"], line["state"], claimed.json["order"]["state"]) == (api.me, "claimed", "claimed")
    claim_id = line["id"]
    delivered = api.post(f"/api/v1/order-claims/{claim_id}/deliver", delivery(posted.json), as_="volunteer")
    assert delivered.status_code == 201, delivered.json
    assert delivered.json["order"]["state"] == "delivered"

    confirmed = api.post(f"/api/v1/order-claims/{claim_id}/confirm", {"rating": 5}, as_="staff", key="confirm-1")
    assert confirmed.status_code == 201, confirmed.json
    [earned] = confirmed.json["recorded"]
    points = earned["scoring"]["points"]
    assert points > 0 and earned["participant_id"] == api.me and earned["activity_type"] == "micro_wish"
    event = confirmed.json["event"]
    assert (event["happening"], event["rating"], event["transaction_id"]) == ("confirmed", 5, earned["scoring"]["transaction_id"])
    assert confirmed.json["order"]["state"] == "confirmed"
    written, transactions = row_counts(session), transaction_count(session)

    replayed = api.post(f"/api/v1/order-claims/{claim_id}/confirm", {"rating": 5}, as_="staff", key="confirm-1")
    assert (replayed.status_code, replayed.headers.get("Idempotent-Replayed"), replayed.json) == (201, "true", confirmed.json)
    again = api.post(f"/api/v1/order-claims/{claim_id}/confirm", {"rating": 5}, as_="staff", key="confirm-2")
    assert again.status_code == 201 and again.json["replayed"] is True and again.json["recorded"] == []
    assert again.json["event"] == event
    assert transaction_count(session) == transactions
    assert counts_without_replays(session) == written | {"idempotency_record": 0}
    assert api.get(f"/api/v1/participants/{api.me}/balance", as_="volunteer").json["balance"] == points

    shown = api.get(f"/api/v1/orders/{order_id}", as_="volunteer").json
    assert [line["happening"] for line in shown["history"]] == ["published", "claimed", "delivered", "confirmed"]
    assert shown["history"][0]["actor_name"] == "API staff"


def test_a_grid_worker_posts_and_confirms_in_their_grid_only(api, orders, street):
    in_grid = orders(as_="grid", org_id=street.grid)
    assert in_grid.status_code == 201 and in_grid.json["org_id"] == street.grid
    assert orders(as_="grid").status_code == 404  # the community is above their grid


def test_a_grid_workers_or_a_streets_order_must_be_of_a_community_or_grid(api, orders, street):
    response = orders(as_="street", org_id=street.street)
    assert response.status_code == 422 and "org" in response.json["errors"]


def test_a_post_retried_with_its_key_returns_the_first_order_and_writes_nothing(api, orders, street, session):
    body = {"org_id": street.community, "kind": "service_need", "title": "修水管", "activity_type": "volunteer_service", "deadline": DEADLINE}
    first = api.post("/api/v1/orders", body, as_="staff", key="post-1")
    assert first.status_code == 201, first.json
    written = row_counts(session)
    again = api.post("/api/v1/orders", body, as_="staff", key="post-1")
    assert (again.headers.get("Idempotent-Replayed"), again.json) == ("true", first.json) and row_counts(session) == written
    assert api.post("/api/v1/orders", body, as_="staff", key=None).status_code == 400


# Refusals ----------------------------------------------------------------------------------


def test_an_action_the_state_does_not_allow_is_a_conflict_naming_the_state(api, order, session):
    claim_id = claim(api, order["id"], api.me).json["event"]["claim_id"]
    before = counts_without_replays(session)
    early = api.post(f"/api/v1/order-claims/{claim_id}/confirm", {}, as_="staff")
    assert early.status_code == 409 and early.json["code"] == "transition_refused"
    assert "a claim that is claimed cannot be confirmed; it must be delivered" in early.json["detail"], early.json
    assert counts_without_replays(session) == before
    api.post(f"/api/v1/order-claims/{claim_id}/deliver", delivery(order), as_="volunteer")
    late = api.post(f"/api/v1/order-claims/{claim_id}/withdraw", as_="volunteer")
    assert late.status_code == 409 and "a claim that is delivered cannot be withdrawn" in late.json["detail"]


def test_publishing_again_returns_the_first_publication(api, order, session):
    before = counts_without_replays(session)
    again = api.post(f"/api/v1/orders/{order['id']}/publish", as_="staff")
    assert again.status_code == 201 and again.json["replayed"] is True
    assert counts_without_replays(session) == before


def test_a_full_order_refuses_another_claimant_with_a_conflict(api, order, session):
    assert claim(api, order["id"], api.me).status_code == 201
    before = counts_without_replays(session)
    taken = claim(api, order["id"], api.other_volunteer, as_="volunteer2")
    assert taken.status_code == 409 and taken.json["code"] == "transition_refused"
    assert "every place on this order is taken" in taken.json["detail"]
    assert counts_without_replays(session) == before
    mine_again = claim(api, order["id"], api.me)
    assert mine_again.status_code == 201 and mine_again.json["replayed"] is True


def test_a_volunteer_claims_only_for_themselves_and_staff_for_anyone_in_scope(api, order, street, session, write):
    team_id = write(lambda: create_team(session, org=session.get(OrgNode, street.community), name="助老队", founded_on=None).id)
    before = counts_without_replays(session)
    for body in ({"participant_id": api.other_volunteer}, {"team_id": team_id}):
        response = api.post(f"/api/v1/orders/{order['id']}/claims", body, as_="volunteer")
        assert response.status_code == 404, (body, response.json)
    assert counts_without_replays(session) == before
    for_them = claim(api, order["id"], api.other_volunteer, as_="staff")
    assert for_them.status_code == 201 and for_them.json["order"]["claims"][0]["claimant_id"] == api.other_volunteer


def test_only_the_claimant_or_staff_withdraw_or_deliver_a_claim(api, order, session):
    claim_id = claim(api, order["id"], api.me).json["event"]["claim_id"]
    before = counts_without_replays(session)
    assert api.post(f"/api/v1/order-claims/{claim_id}/withdraw", as_="volunteer2").status_code == 404
    assert api.post(f"/api/v1/order-claims/{claim_id}/deliver", delivery(order), as_="volunteer2").status_code == 404
    assert api.post(f"/api/v1/order-claims/{claim_id}/withdraw", as_="auditor").status_code == 403
    assert counts_without_replays(session) == before
    withdrawn = api.post(f"/api/v1/order-claims/{claim_id}/withdraw", as_="volunteer")
    assert withdrawn.status_code == 201 and withdrawn.json["order"]["places_left"] == 1


def test_nobody_confirms_or_rejects_a_delivery_they_took_part_in(api, delivered, session, write, street):
    assert api.post(f"/api/v1/order-claims/{delivered}/confirm", {}, as_="volunteer").json["code"] == "forbidden"

    def claimant_also_works_as_staff():
        claimant = session.execute(select(AppUser).where(AppUser.username == "api-volunteer")).scalar_one()
        grant_role(session, user=claimant, role="community_staff", org=session.get(OrgNode, street.community))

    write(claimant_also_works_as_staff)
    before = counts_without_replays(session)
    for action, body in (("confirm", {}), ("reject", {"reason": "照片不清楚"})):
        own = api.post(f"/api/v1/order-claims/{delivered}/{action}", body, as_="volunteer")
        assert own.status_code == 403 and own.json["code"] == "not_allowed", own.json
        assert "took part in" in own.json["detail"]
    assert counts_without_replays(session) == before
    rejected = api.post(f"/api/v1/order-claims/{delivered}/reject", {"reason": "照片不清楚"}, as_="staff")
    assert rejected.status_code == 201 and rejected.json["order"]["claims"][0]["state"] == "claimed"


def test_staff_of_another_community_find_nothing_of_c1s_orders_and_change_nothing(api, order, delivered, session):
    order_id = order["id"]
    before = counts_without_replays(session)
    for method, path, body in [
        ("get", f"/api/v1/orders/{order_id}", None),
        ("post", f"/api/v1/orders/{order_id}/publish", None),
        ("post", f"/api/v1/orders/{order_id}/cancel", {"reason": "重复发布"}),
        ("post", f"/api/v1/orders/{order_id}/claims", {"participant_id": api.other_volunteer}),
        ("post", f"/api/v1/order-claims/{delivered}/confirm", {"rating": 3}),
        ("post", f"/api/v1/order-claims/{delivered}/reject", {"reason": "不合格"}),
        ("post", f"/api/v1/order-claims/{delivered}/withdraw", None),
        ("get", f"/api/v1/participants/{api.me}/open-orders", None),
    ]:
        response = api.get(path, as_="staff2") if method == "get" else api.post(path, body, as_="staff2")
        assert response.status_code == 404, (path, response.json)
    assert api.get("/api/v1/orders", as_="staff2").json["items"] == []
    assert counts_without_replays(session) == before
    assert api.get(f"/api/v1/orders/{order_id}", as_="staff").json["state"] == "delivered"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/orders", {"state": "confirmed"}, "state"),
        ("/api/v1/orders/{order}/publish", {"state": "published"}, "state"),
        ("/api/v1/orders/{order}/cancel", {"reason": "重复", "org_id": 1}, "org_id"),
        ("/api/v1/orders/{order}/claims", {"participant_id": 1, "status": "confirmed"}, "status"),
        ("/api/v1/orders/{order}/claims", {}, "participant_id"),
        ("/api/v1/order-claims/{claim}/deliver", {"note": "好了", "served_from": "2026-03-04T09:00:00", "served_until": "2026-03-04T10:00:00+08:00"}, "served_from"),
        ("/api/v1/order-claims/{claim}/confirm", {"rating": 6}, "rating"),
        ("/api/v1/order-claims/{claim}/confirm", {"rating": 5, "balance": 100}, "balance"),
        ("/api/v1/order-claims/{claim}/reject", {}, "reason"),
        ("/api/v1/order-claims/{claim}/withdraw", {"state": "withdrawn"}, "state"),
        ("/api/v1/orders/close-overdue", {"as_of": "2026-02-30"}, "as_of"),
    ],
)
def test_bad_or_unknown_body_fields_are_refused_naming_them(api, order, session, path, body, field):
    claim_id = claim(api, order["id"], api.me).json["event"]["claim_id"]
    before = counts_without_replays(session)
    response = api.post(path.format(order=order["id"], claim=claim_id), body, as_="admin")
    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert counts_without_replays(session) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "wish"}, "kind"),
        ({"deadline": "2026-13-01"}, "deadline"),
        ({"deadline": "2026-12-01T09:00:00"}, "deadline"),
        ({"deadline": "1999-12-31"}, "deadline"),
        ({"deadline": "2026-01-01"}, "deadline"),  # past
        ({"capacity": 0}, "capacity"),
        ({"capacity": "2"}, "capacity"),
        ({"activity_type": "flying"}, "activity_type"),
        ({"activity_type": "unit_donation"}, "activity_type"),  # counted per yuan
        ({"kind": "co_building_project", "claimant_kind": "person"}, "claimant_kind"),
        ({"publish": "yes"}, "publish"),
        ({"beneficiary_group": "everyone"}, "beneficiary_group"),
        ({"title": ""}, "title"),
        ({"org_id": "C1"}, "org_id"),
    ],
)
def test_a_bad_order_is_refused_naming_the_field(orders, session, changes, field):
    before = counts_without_replays(session)
    response = orders(**changes)
    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert counts_without_replays(session) == before


# Reading orders ----------------------------------------------------------------------------


def test_volunteers_see_the_beneficiary_masked_until_they_hold_a_place(api, order):
    path = f"/api/v1/orders/{order['id']}"
    staff = api.get(path, as_="staff").json
    assert (staff["beneficiary_name"], staff["beneficiary_contact"], staff["beneficiary_masked"]) == ("王秀英", "13800000000", False)
    for who in ("volunteer", "volunteer2", "auditor"):
        seen = api.get(path, as_=who).json
        assert (seen["beneficiary_name"], seen["beneficiary_contact"], seen["beneficiary_masked"]) == ("王**", None, True), who
    listed = api.get("/api/v1/orders", as_="volunteer").json["items"]
    assert [(item["id"], item["beneficiary_name"], item["beneficiary_contact"]) for item in listed] == [(order["id"], "王**", None)]
    [near] = api.get(f"/api/v1/participants/{api.me}/open-orders", as_="volunteer").json["items"]
    assert (near["order_id"], near["beneficiary"], near["places_left"]) == (order["id"], "王**", 1)

    claim(api, order["id"], api.me)
    assert api.get(path, as_="volunteer").json["beneficiary_contact"] == "13800000000"  # to deliver, they must reach them
    assert api.get(path, as_="volunteer2").json["beneficiary_contact"] is None
    assert api.get("/api/v1/orders", as_="volunteer").json["items"][0]["beneficiary_contact"] is None
    assert api.get(f"/api/v1/participants/{api.me}/open-orders", as_="volunteer").json["items"] == []


def test_a_draft_is_seen_only_by_those_who_run_orders(api, orders):
    draft = orders(publish=False).json
    for who, status in [("staff", 200), ("grid", 404), ("street", 200), ("volunteer", 404), ("auditor", 404), ("staff2", 404)]:
        assert api.get(f"/api/v1/orders/{draft['id']}", as_=who).status_code == status, who
    assert api.get("/api/v1/orders", as_="volunteer").json["items"] == []
    assert api.post(f"/api/v1/orders/{draft['id']}/publish", as_="volunteer").status_code == 404


def test_the_order_list_filters_by_org_state_and_kind_a_page_at_a_time(api, orders, street):
    first = orders().json
    grid = orders(org_id=street.grid, title="清理楼道", kind="service_need", activity_type="environment_cleanup").json
    draft = orders(publish=False, title="草稿").json

    def ids(as_="staff", **query):
        response = api.get("/api/v1/orders", as_=as_, **query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids() == [first["id"], grid["id"], draft["id"]]
    assert ids(org_id=street.grid) == [grid["id"]]
    assert ids(state="draft") == [draft["id"]]
    assert ids(kind="service_need") == [grid["id"]]
    assert ids(page=2, page_size=2) == [draft["id"]]
    assert api.get("/api/v1/orders", as_="staff", page_size=2).json["page"] == {"page": 1, "page_size": 2, "total": 3}
    assert ids("grid") == [grid["id"]] and ids("admin") == ids("street") == ids()
    for query, field in [({"state": "done"}, "state"), ({"kind": "wish"}, "kind"), ({"org_id": "x"}, "org_id"), ({"page_size": "0"}, "page_size")]:
        response = api.get("/api/v1/orders", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"], response.json
    assert api.get("/api/v1/orders", as_="staff", org_id=street.other_community).status_code == 404


def test_a_cancelled_order_says_why_and_refuses_claims(api, order):
    cancelled = api.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "老人已搬走"}, as_="staff")
    assert cancelled.status_code == 201 and cancelled.json["order"]["state"] == "cancelled"
    assert cancelled.json["event"]["note"] == "老人已搬走"
    refused = claim(api, order["id"], api.me)
    assert refused.status_code == 409 and "cancelled" in refused.json["detail"]
    assert api.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "老人已搬走"}, as_="volunteer").status_code == 403


def test_claim_counts_of_a_year_are_for_staff(api, street):
    path = f"/api/v1/orgs/{street.community}/order-claim-counts"
    assert api.get(path, as_="staff", year="2026").json == {"org_id": street.community, "year": 2026, "items": []}
    assert api.get(path, as_="volunteer", year="2026").status_code == 403
    assert api.get(path, as_="staff2", year="2026").status_code == 404
    missing = api.get(path, as_="staff")
    assert missing.status_code == 422 and "query.year" in missing.json["errors"]


# The deadline job --------------------------------------------------------------------------


@pytest.fixture
def overdue_order(api, session, write, street, default_rules) -> int:
    """Return an order posted in March with a deadline of 10 March, claimed by ``me`` and never delivered."""

    def set_up():
        staff = session.execute(select(AppUser).where(AppUser.username == "api-staff")).scalar_one()
        posted = post_order(
            session,
            actor=staff,
            org=session.get(OrgNode, street.community),
            kind="micro_wish",
            title="买药",
            activity_type="micro_wish",
            deadline=dt.date(2026, 3, 10),
            beneficiary_group="elderly_living_alone",
            idempotency_key="march",
            publish=True,
            now=at("2026-03-01 09:00"),
        )
        claim_order(session, actor=staff, order_id=posted.id, participant_id=api.me, now=at("2026-03-02 09:00"))
        return posted.id

    return write(set_up)


def test_the_deadline_job_is_run_by_whoever_manages_orders_everywhere_and_once_a_day(api, overdue_order, session):
    body = {"as_of": "2026-03-10"}
    before = counts_without_replays(session)
    for who in ("staff", "street", "grid", "volunteer"):
        response = api.post("/api/v1/orders/close-overdue", body, as_=who)
        assert response.status_code == 403, (who, response.json)
    assert counts_without_replays(session) == before
    run = api.post("/api/v1/orders/close-overdue", body, as_="admin")
    assert run.status_code == 201, run.json
    assert run.json == {
        "as_of": "2026-03-10",
        "claims_overdue": 1,
        "claims_penalised": 0,  # nothing to take: the balance is 0
        "points_taken": 0,
        "orders_expired": 1,
        "orders_closed": 0,
    }
    again = api.post("/api/v1/orders/close-overdue", body, as_="admin")
    assert again.status_code == 201 and again.json["claims_overdue"] == again.json["orders_expired"] == 0
    shown = api.get(f"/api/v1/orders/{overdue_order}", as_="staff").json
    assert (shown["state"], shown["claims"][0]["state"]) == ("expired", "overdue")
