"""The ledger over HTTP: transactions and reversals, a participant's account, verification and expiry."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from ledger.db import db
from ledger.rewards import explain_entry
from ledger.transactions import participant_account
from tests.activity_fixtures import service
from tests.helpers import earn, tamper
from tests.refusals import row_counts

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def entries(api, desk, session, write, street, actor_id):
    """Give the volunteer ``me`` a scored patrol in their grid and ten points in the community's books.

    Returns the ids of the two transactions: ``(patrol, points)``.
    """
    patrol = desk.record(service(api.me, "2026-03-04 09:00", "11:00")).transaction.id
    account_id = participant_account(session, api.me).id
    points = write(lambda: earn(session, actor_id, street.community, account_id, 10, dt.date(2026, 3, 5)).id)
    return patrol, points


def test_staff_read_a_transaction_with_its_postings_explanation_and_chain_link(api, entries, street, client):
    patrol, _ = entries
    body = api.get(f"/api/v1/transactions/{patrol}", as_="staff").json
    assert (body["kind"], body["business_date"], body["org_id"], body["service_minutes"]) == ("earn", "2026-03-04", street.grid, 120)
    assert sorted(posting["amount"] for posting in body["postings"]) == [-20, 20]
    assert [p["participant_id"] for p in body["postings"] if p["account_kind"] == "participant"] == [api.me]
    assert body["explanation"] == explain_entry("earn", body["breakdown"], "zh") and body["explanation"]
    assert (body["seq"], len(body["hash"]), len(body["prev_hash"]), body["reversed_by_id"]) == (1, 64, 64, None)
    english = client.get(f"/api/v1/transactions/{patrol}", headers=api.headers("volunteer", language="en")).json
    assert english["explanation"] == explain_entry("earn", english["breakdown"], "en") != body["explanation"]


def test_a_transaction_is_seen_by_its_volunteer_and_staff_in_scope_and_by_nobody_else(api, entries):
    patrol, points = entries
    seen = {
        who: (api.get(f"/api/v1/transactions/{patrol}", as_=who).status_code, api.get(f"/api/v1/transactions/{points}", as_=who).status_code)
        for who in ("volunteer", "volunteer2", "staff", "staff2", "grid", "auditor", "street", "admin")
    }
    assert seen == {
        "volunteer": (200, 200),
        "volunteer2": (404, 404),
        "staff": (200, 200),
        "staff2": (404, 404),
        "grid": (200, 404),  # the patrol is in the grid's books, the points in the community's
        "auditor": (200, 200),
        "street": (200, 200),
        "admin": (200, 200),
    }
    assert api.get("/api/v1/transactions/999999", as_="admin").status_code == 404
    assert api.get(f"/api/v1/transactions/{2**64}", as_="admin").status_code == 404


def test_the_list_filters_by_org_kind_business_dates_and_participant(api, entries, street, session, write, actor_id):
    patrol, points = entries
    other_account = participant_account(session, api.other_volunteer).id
    others = write(lambda: earn(session, actor_id, street.community, other_account, 5, dt.date(2026, 4, 1)).id)

    def ids(as_="staff", **query):
        response = api.get("/api/v1/transactions", as_=as_, **query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids() == [others, points, patrol]
    assert ids(org_id=street.grid) == [patrol]
    assert ids(participant_id=api.me) == [points, patrol]
    assert ids(**{"from": "2026-03-05", "to": "2026-03-31"}) == [points]
    assert ids(kind="redeem") == []
    assert ids(page_size=1, page=2) == [points]
    assert api.get("/api/v1/transactions", as_="staff").json["page"] == {"page": 1, "page_size": 50, "total": 3}
    assert ids("staff2") == [] and ids("grid") == [patrol]


def test_a_volunteer_lists_only_their_own_transactions_and_asks_after_no_one_elses(api, entries, street, session, write, actor_id):
    other_account = participant_account(session, api.other_volunteer).id
    write(lambda: earn(session, actor_id, street.community, other_account, 5, dt.date(2026, 4, 1)))
    listed = api.get("/api/v1/transactions", as_="volunteer").json["items"]
    assert sorted(item["id"] for item in listed) == sorted(entries)
    assert api.get("/api/v1/transactions", as_="volunteer", participant_id=api.other_volunteer).status_code == 404
    assert api.get("/api/v1/transactions", as_="staff", org_id=street.other_community).status_code == 404


def test_list_filters_refuse_bad_values_naming_them(api):
    for query, field in [
        ({"kind": "gift"}, "kind"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "to"),
        ({"org_id": "C1"}, "org_id"),
        ({"participant_id": "99999999999999"}, "participant_id"),
        ({"page_size": "201"}, "page_size"),
    ]:
        response = api.get("/api/v1/transactions", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"], (query, response.json)


def test_staff_reverse_a_transaction_once_and_a_retry_writes_nothing_more(api, entries, session):
    _, points = entries
    path = f"/api/v1/transactions/{points}/reversal"
    before = row_counts(session)
    missing = api.post(path, {"reason": "录入错误"}, as_="staff", key=None)
    assert missing.status_code == 400 and row_counts(session) == before
    first = api.post(path, {"reason": "录入错误"}, as_="staff", key="undo")
    assert first.status_code == 201 and (first.json["kind"], first.json["reverses_id"], first.json["memo"]) == ("reverse", points, "录入错误")
    assert first.json["recorded_by"] == "api-staff" and sorted(p["amount"] for p in first.json["postings"]) == [-10, 10]
    written = row_counts(session)
    again = api.post(path, {"reason": "录入错误"}, as_="staff", key="undo")
    assert (again.status_code, again.headers.get("Idempotent-Replayed"), again.json) == (201, "true", first.json)
    other = api.post(path, {"reason": "另一个原因"}, as_="staff", key="undo")
    assert other.status_code == 422 and other.json["code"] == "idempotency_conflict"
    twice = api.post(path, {"reason": "再冲一次"}, as_="staff")
    assert twice.status_code == 409 and twice.json["code"] == "already_reversed"
    of_reversal = api.post(f"/api/v1/transactions/{first.json['id']}/reversal", {"reason": "冲正冲正"}, as_="staff")
    assert of_reversal.status_code == 409 and of_reversal.json["code"] == "not_reversible"
    assert row_counts(session) == written
    assert api.get(f"/api/v1/transactions/{points}", as_="staff").json["reversed_by_id"] == first.json["id"]
    assert api.get(f"/api/v1/participants/{api.me}/balance", as_="volunteer").json["balance"] == 20


def test_a_reversal_is_staffs_in_scope_needs_a_reason_and_refusals_write_nothing(api, entries, session):
    patrol, points = entries
    before = row_counts(session)
    for who, transaction, status in [
        ("auditor", points, 403),
        ("volunteer", points, 403),  # their own entry: they may see it, not correct it
        ("volunteer2", points, 404),
        ("grid", points, 404),
        ("staff2", patrol, 404),
    ]:
        response = api.post(f"/api/v1/transactions/{transaction}/reversal", {"reason": "录入错误"}, as_=who)
        assert response.status_code == status, (who, response.json)
    for body, field in [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": 42}, "reason"),
        ({"reason": "长" * 501}, "reason"),
        ({"reason": "错", "balance": 100}, "balance"),
        ({"reason": "错", "org_id": 1}, "org_id"),
        ({"reason": "错", "status": "reversed"}, "status"),
        ({"reason": "错", "hash": "00"}, "hash"),
    ]:
        response = api.post(f"/api/v1/transactions/{points}/reversal", body, as_="staff")
        assert response.status_code == 422 and field in response.json["errors"], (body, response.json)
    assert row_counts(session) | {"idempotency_record": 0} == before | {"idempotency_record": 0}


@contextmanager
def queries_run():
    """Collect the SELECT statements run inside the block."""
    statements = []

    def record(_connection, _cursor, statement, *_args):
        if statement.startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_volunteer_sees_balance_hours_stars_and_rank_in_one_call_of_a_few_queries(
    api, session, write, street, actor_id, default_rules, make_volunteer
):
    today = dt.datetime.now(SHANGHAI).date()
    mine, rivals = participant_account(session, api.me).id, make_volunteer()
    write(lambda: earn(session, actor_id, street.community, mine, 10, today, service_minutes=90))
    write(lambda: earn(session, actor_id, street.community, rivals, 25, today))
    with queries_run() as queries:
        response = api.get(f"/api/v1/participants/{api.me}/balance", as_="volunteer")
    assert response.status_code == 200
    assert response.json == {
        "participant_id": api.me,
        "balance": 10,
        "service_minutes": 90,
        "stars": {"level": 0, "next_level": 1, "minutes_to_next": 100 * 60 - 90},
        "rank": {"org_id": street.community, "category": "volunteer", "period": f"{today.year}-01-01..{today.year}-12-31", "public": True, "rank": 2, "ranked": 2},
    }
    # Four queries sign the caller in; eight answer: participant, orgs, rules, account, year totals (stars), category, ranking.
    assert len(queries) <= 12, queries


def test_a_balance_is_its_volunteers_and_their_staffs_alone(api, entries):
    path = f"/api/v1/participants/{api.me}/balance"
    statuses = {who: api.get(path, as_=who).status_code for who in ("volunteer", "volunteer2", "staff", "staff2", "grid", "auditor")}
    assert statuses == {"volunteer": 200, "volunteer2": 404, "staff": 200, "staff2": 404, "grid": 200, "auditor": 200}
    assert api.get(f"/api/v1/participants/{2**40}/balance", as_="admin").status_code == 404
    staff_view = api.get(path, as_="staff").json["rank"]
    assert staff_view["public"] is False


def test_history_pages_back_by_transaction_id_and_explains_each_entry(api, entries):
    patrol, points = entries
    first = api.get(f"/api/v1/participants/{api.me}/history", as_="volunteer", limit=1).json
    assert [line["transaction_id"] for line in first["items"]] == [points] and first["next_before_id"] == points
    assert (first["items"][0]["amount"], first["items"][0]["balance_after"]) == (10, 30)
    rest = api.get(f"/api/v1/participants/{api.me}/history", as_="volunteer", before_id=points, limit=5).json
    [line] = rest["items"]
    assert (line["transaction_id"], line["amount"], line["service_minutes"], rest["next_before_id"]) == (patrol, 20, 120, None)
    assert line["explanation"] == explain_entry("earn", line["breakdown"], "zh") and line["explanation"]
    assert api.get(f"/api/v1/participants/{api.me}/history", as_="volunteer2").status_code == 404


def test_period_totals_and_coming_expiries_are_the_participants_and_their_staffs(api, entries):
    path = f"/api/v1/participants/{api.me}/period-totals"
    months = api.get(path, as_="volunteer").json
    assert [(row["starts_on"], row["points_earned"], row["service_minutes"]) for row in months["items"]] == [("2026-03-01", 30, 120)]
    days = api.get(path, as_="staff", period="day", **{"from": "2026-03-05"}).json["items"]
    assert [(row["period"], row["starts_on"], row["points_earned"], row["activity_count"]) for row in days] == [("day", "2026-03-05", 10, 0)]
    assert api.get(path, as_="staff", period="year").json["items"][0]["starts_on"] == "2026-01-01"
    assert api.get(path, as_="staff2").status_code == 404
    expiring = api.get(f"/api/v1/participants/{api.me}/expiring", as_="volunteer").json
    assert (expiring["balance"], expiring["expiring"]) == (30, [{"expires_on": "2028-01-01", "points": 30}])
    assert api.get(f"/api/v1/participants/{api.me}/expiring", as_="volunteer2").status_code == 404


def test_participant_queries_refuse_bad_values_naming_them(api):
    for path, query, field in [
        ("history", {"limit": "201"}, "limit"),
        ("history", {"limit": "true"}, "limit"),
        ("history", {"before_id": "0"}, "before_id"),
        ("period-totals", {"period": "week"}, "period"),
        ("period-totals", {"to": "2026-02-30"}, "to"),
        ("period-totals", {"from": "2026-03-02", "to": "2026-03-01"}, "to"),
    ]:
        response = api.get(f"/api/v1/participants/{api.me}/{path}", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"], (path, query, response.json)


# Verification and expiry -------------------------------------------------------------------


def test_an_auditor_verifies_the_whole_ledger_against_a_checkpoint_and_by_replay(api, entries):
    checkpoint = api.get("/api/v1/checkpoint", as_="auditor")
    assert checkpoint.status_code == 200 and checkpoint.json["chains"]
    report = api.post("/api/v1/verify", {"checkpoint": checkpoint.json, "replay": True}, as_="auditor", key=None)
    assert report.status_code == 200, report.json
    body = report.json
    assert (body["ok"], body["problems"], body["transactions"], body["replayed_entries"]) == (True, [], 2, 1)
    assert body["checkpoint_chains"] == len(checkpoint.json["chains"])
    assert api.post("/api/v1/verify", {}, as_="street", key=None).json["replayed_entries"] is None


def test_verification_names_the_transaction_changed_behind_the_ledgers_back(api, entries, app):
    _, points = entries
    tamper(app, f"UPDATE ledger_transaction SET memo = '改过' WHERE id = {points}")
    body = api.post("/api/v1/verify", {}, as_="auditor", key=None).json
    assert body["ok"] is False
    assert {"check": "hash", "transaction": points} in [{"check": p["check"], "transaction": p["transaction"]} for p in body["problems"]]


def test_only_those_who_hold_verify_may_verify_or_take_a_checkpoint(api):
    for who, status in [("staff", 403), ("grid", 403), ("volunteer", 403), ("auditor", 200), ("street", 200), ("admin", 200)]:
        assert api.post("/api/v1/verify", {}, as_=who, key=None).status_code == status, who
        assert api.get("/api/v1/checkpoint", as_=who).status_code == status, who


def test_verification_refuses_a_malformed_checkpoint_naming_the_field(api, entries):
    good = api.get("/api/v1/checkpoint", as_="auditor").json
    chain = good["chains"][0]
    for body, field in [
        ({"checkpoint": good | {"format": "other/1"}}, "checkpoint.format"),
        ({"checkpoint": good | {"chains": [chain | {"hash": "xyz"}]}}, "checkpoint.chains.0.hash"),
        ({"checkpoint": good | {"chains": [chain | {"seq": "1"}]}}, "checkpoint.chains.0.seq"),
        ({"checkpoint": good | {"chains": [chain | {"balance": 1}]}}, "checkpoint.chains.0.balance"),
        ({"checkpoint": "{}"}, "checkpoint._schema"),
        ({"replay": "true"}, "replay"),
        ({"hash": "00"}, "hash"),
    ]:
        response = api.post("/api/v1/verify", body, as_="auditor", key=None)
        assert response.status_code == 422 and field in response.json["errors"], (field, response.json)


@pytest.fixture
def old_points(api, session, write, street, actor_id, default_rules) -> int:
    """Give ``me`` 40 points earned in 2024, which the default rules expire on 1 January 2026."""
    account_id = participant_account(session, api.me).id
    write(lambda: earn(session, actor_id, street.community, account_id, 40, dt.date(2024, 5, 1)))
    return account_id


def test_a_street_admin_runs_expiry_for_a_subtree_once(api, old_points, street, session):
    body = {"as_of": "2026-01-01", "org_id": street.community}
    missing = api.post("/api/v1/expiry-runs", body, as_="street", key=None)
    assert missing.status_code == 400
    first = api.post("/api/v1/expiry-runs", body, as_="street", key="expire-2026")
    assert first.status_code == 201, first.json
    assert first.json == {"org_id": street.community, "as_of": "2026-01-01", "accounts_examined": 2, "accounts_expired": 1, "points_expired": 40}
    written = row_counts(session)
    again = api.post("/api/v1/expiry-runs", body, as_="street", key="expire-2026")
    assert (again.headers.get("Idempotent-Replayed"), again.json) == ("true", first.json) and row_counts(session) == written
    other = api.post("/api/v1/expiry-runs", body | {"as_of": "2026-01-02"}, as_="street", key="expire-2026")
    assert other.status_code == 422 and other.json["code"] == "idempotency_conflict"
    rerun = api.post("/api/v1/expiry-runs", body, as_="street")
    assert rerun.status_code == 201 and rerun.json["points_expired"] == 0
    assert api.get(f"/api/v1/participants/{api.me}/balance", as_="volunteer").json["balance"] == 0


def test_expiry_is_a_street_admins_and_refusals_write_nothing(api, old_points, street, session):
    before = row_counts(session)
    for who, org, status in [("staff", street.community, 403), ("auditor", street.community, 403), ("staff2", street.community, 404), ("volunteer", street.community, 403)]:
        response = api.post("/api/v1/expiry-runs", {"as_of": "2026-01-01", "org_id": org}, as_=who)
        assert response.status_code == status, (who, response.json)
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    for body, field in [
        ({"as_of": tomorrow, "org_id": street.community}, "as_of"),
        ({"as_of": "2026-02-30", "org_id": street.community}, "as_of"),
        ({"as_of": "2026-01-01", "org_id": "3"}, "org_id"),
        ({"as_of": "2026-01-01", "org_id": street.community, "balance": 0}, "balance"),
        ({"as_of": "2026-01-01", "org_id": street.community, "status": "done"}, "status"),
        ({"org_id": street.community}, "as_of"),
    ]:
        response = api.post("/api/v1/expiry-runs", body, as_="street")
        assert response.status_code == 422 and field in response.json["errors"], (body, response.json)
    assert row_counts(session) | {"idempotency_record": 0} == before | {"idempotency_record": 0}
