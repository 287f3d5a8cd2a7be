"""Activities over HTTP: recording, events, self-reports and their review, corrections, and reading them back."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.models import Account, Activity, AppUser, OrgNode
from ledger.rewards import explain_entry
from ledger.users import grant_role
from tests.refusals import row_counts

#: A Wednesday morning in Shanghai: two hours of patrol earn 20 points under the default rules.
PATROL = {
    "activity_type": "patrol",
    "started_at": "2026-03-04T09:00:00+08:00",
    "ended_at": "2026-03-04T11:00:00+08:00",
}


@pytest.fixture
def desk(api, street, default_rules):
    """Return a callable recording two hours of patrol as community staff; it returns the response."""

    def record(participant_id=None, *, as_="staff", **changes):
        body = {"org_id": street.grid, "participant_id": participant_id or api.me, **PATROL, **changes}
        return api.post("/api/v1/activities", body, as_=as_)

    return record


@pytest.fixture
def report(api, street, default_rules):
    """Return a callable with which the volunteer ``me`` reports their own patrol; it returns the response."""

    def send(*, as_="volunteer", **changes):
        body = {"org_id": street.grid, "participant_id": api.me, **PATROL, **changes}
        return api.post("/api/v1/activities/self-reports", body, as_=as_)

    return send


def activity_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Activity))


def test_staff_record_service_and_see_what_it_earned_explained(desk):
    response = desk()
    assert response.status_code == 201
    activity = response.json
    assert (activity["state"], activity["source"], activity["participant_name"]) == ("scored", "staff", "李明")
    scoring = activity["scoring"]
    assert (scoring["points"], scoring["service_minutes"], scoring["business_date"]) == (20, 120, "2026-03-04")
    assert scoring["breakdown"]["points"] == 20 and scoring["explanation"]


def test_the_explanation_is_in_the_requests_language(api, street, default_rules):
    body = {"org_id": street.grid, "participant_id": api.me, **PATROL}
    english = api.post("/api/v1/activities", body, as_="staff", language="en").json
    chinese = api.get(f"/api/v1/activities/{english['id']}", as_="staff").json
    breakdown = english["scoring"]["breakdown"]
    assert english["scoring"]["explanation"] == explain_entry("earn", breakdown, "en")
    assert (
        chinese["scoring"]["explanation"]
        == explain_entry("earn", breakdown, "zh")
        != explain_entry("earn", breakdown, "en")
    )


def test_a_grid_worker_records_in_their_grid_only(desk, street):
    assert desk(as_="grid").status_code == 201
    assert desk(as_="grid", org_id=street.community).status_code == 404


def test_recording_outside_your_scope_is_not_found_and_without_the_right_forbidden(
    api, desk, session, street, make_volunteer
):
    elsewhere = session.get(Account, make_volunteer(street.other_community, name="王芳")).participant_id
    before = row_counts(session)
    for as_, participant, status in [
        ("staff2", None, 404),  # the grid is outside community C2
        ("auditor", None, 403),
        ("volunteer2", None, 403),
        ("staff", elsewhere, 404),  # a resident of C2: not even their name shows
    ]:
        response = desk(participant, as_=as_)
        assert response.status_code == status, (as_, response.json)
        assert "王芳" not in response.get_data(as_text=True)
    assert row_counts(session) == before


def test_bad_input_is_refused_naming_the_field(desk, session):
    before = row_counts(session)
    for change, field in [
        ({"travel_minutes": True}, "travel_minutes"),
        ({"travel_minutes": "10"}, "travel_minutes"),
        ({"travel_minutes": 1.5}, "travel_minutes"),
        ({"quantity": 10**40}, "quantity"),
        ({"participant_id": 2**40}, "participant_id"),
        ({"description": "长" * 501}, "description"),
        ({"tags": ["标签" * 21]}, "tags.0"),
        ({"started_at": "2026-03-04T09:00:00"}, "started_at"),
        ({"ended_at": "tomorrow"}, "ended_at"),
        ({"balance": 100}, "balance"),
        ({"status": "scored"}, "status"),
        ({"hash": "ab"}, "hash"),
        ({"ended_at": "2026-03-04T08:00:00+08:00"}, "ended_at"),
        ({"activity_type": "juggling"}, "activity_type"),
    ]:
        response = desk(**change)
        assert response.status_code == 422 and field in response.json["errors"], (change, response.json)
    assert row_counts(session) == before


def test_a_number_too_large_for_a_float_is_refused(api, client, street, default_rules):
    text = (
        f'{{"org_id": {street.grid}, "participant_id": {api.me}, "activity_type": "patrol", "travel_minutes": 1e309, '
        '"started_at": "2026-03-04T09:00:00+08:00", "ended_at": "2026-03-04T11:00:00+08:00"}'
    )
    headers = api.headers("staff", key="huge") | {"Content-Type": "application/json"}
    response = client.post("/api/v1/activities", data=text, headers=headers)
    assert response.status_code == 422 and "travel_minutes" in response.json["errors"]


def test_an_events_sign_in_sheet_is_recorded_at_once(api, street, default_rules):
    body = {
        "org_id": street.community,
        "title": "周三巡逻",
        **PATROL,
        "attendees": [
            {"participant_id": api.me},
            {"participant_id": api.other_volunteer, "ended_at": "2026-03-04T10:00:00+08:00"},
        ],
    }
    response = api.post("/api/v1/events", body, as_="staff")
    assert response.status_code == 201
    assert response.json["event"]["title"] == "周三巡逻"
    points = {line["participant_id"]: line["scoring"]["points"] for line in response.json["activities"]}
    assert points == {api.me: 20, api.other_volunteer: 10}


def test_a_refused_line_names_itself_and_nothing_of_the_sheet_is_written(
    api, session, street, default_rules, make_volunteer
):
    elsewhere = session.get(Account, make_volunteer(street.other_community)).participant_id
    sheet = {"org_id": street.community, "title": "周三巡逻", **PATROL}
    before = row_counts(session)
    for lines, status, field in [
        (
            [
                {"participant_id": api.me},
                {"participant_id": api.other_volunteer, "ended_at": "2026-03-04T12:00:00+08:00"},
            ],
            422,
            "attendees[1].started_at",
        ),
        ([{"participant_id": api.me}, {"participant_id": api.me}], 422, "attendees[1].participant_id"),
        ([{"participant_id": api.me}, {"participant_id": elsewhere}], 404, "attendees[1].participant_id"),
        (
            [{"participant_id": api.me}, {"participant_id": api.other_volunteer, "travel_minutes": -1}],
            422,
            "attendees.1.travel_minutes",
        ),
        ([{"participant_id": api.me, "org_id": street.community}], 422, "attendees.0.org_id"),
        ([], 422, "attendees"),
    ]:
        response = api.post("/api/v1/events", sheet | {"attendees": lines}, as_="staff")
        assert response.status_code == status and field in response.json["errors"], response.json
    assert (
        api.post("/api/v1/events", sheet | {"attendees": [{"participant_id": api.me}]}, as_="staff2").status_code == 404
    )
    assert row_counts(session) == before


def test_a_volunteer_reports_their_own_service_and_another_staff_member_approves_it(api, report):
    reported = report()
    assert reported.status_code == 201
    assert (reported.json["state"], reported.json["scoring"]) == ("pending", None)
    path = f"/api/v1/activities/{reported.json['id']}"
    assert api.get(path, as_="volunteer").json["state"] == "pending"
    pending = api.get("/api/v1/activities", as_="staff", pending="true").json["items"]
    assert [item["id"] for item in pending] == [reported.json["id"]]

    approved = api.post(f"{path}/review", {"decision": "approve"}, as_="grid")
    assert approved.status_code == 201 and approved.json["scoring"]["points"] == 20
    assert approved.json["review"]["approved"] is True
    assert api.get("/api/v1/activities", as_="staff", pending="true").json["items"] == []
    again = api.post(f"{path}/review", {"decision": "reject", "reason": "重复"}, as_="staff")
    assert again.status_code == 409


def test_nobody_reports_for_someone_else(api, report, session):
    before = row_counts(session)
    assert report(participant_id=api.other_volunteer).status_code == 404
    assert report(as_="staff").status_code == 403  # staff hold no volunteer role
    assert row_counts(session) == before


def test_a_report_is_reviewed_only_by_someone_else_in_scope(api, report, session, write, street):
    path = f"/api/v1/activities/{report().json['id']}/review"
    before = row_counts(session)
    assert api.post(path, {"decision": "approve"}, as_="volunteer").status_code == 403
    assert api.post(path, {"decision": "approve"}, as_="volunteer2").status_code == 404
    assert api.post(path, {"decision": "approve"}, as_="staff2").status_code == 404
    assert api.post(path, {"decision": "approve"}, as_="auditor").status_code == 403
    refused = api.post(path, {"decision": "reject"}, as_="staff")
    assert refused.status_code == 422 and "reason" in refused.json["errors"]
    for body, field in [
        ({"decision": True}, "decision"),
        ({"approve": True}, "approve"),
        ({"decision": "approve", "reason": "x" * 501}, "reason"),
    ]:
        assert field in api.post(path, body, as_="staff").json["errors"]

    def reporter_also_works_the_grid():
        reporter = session.execute(select(AppUser).where(AppUser.username == "api-volunteer")).scalar_one()
        grant_role(session, user=reporter, role="grid_worker", org=session.get(OrgNode, street.grid))

    write(reporter_also_works_the_grid)
    before = row_counts(session)
    own = api.post(path, {"decision": "approve"}, as_="volunteer")
    assert own.status_code == 403 and own.json["code"] == "not_allowed"
    assert row_counts(session) == before
    rejected = api.post(path, {"decision": "reject", "reason": "时间对不上"}, as_="staff")
    assert rejected.status_code == 201 and rejected.json["state"] == "rejected"


def test_staff_correct_an_activity_and_the_original_shows_it_was_replaced(api, desk):
    original = desk().json
    path = f"/api/v1/activities/{original['id']}"
    corrected = api.post(
        f"{path}/correction", {"ended_at": "2026-03-04T10:00:00+08:00", "reason": "提前结束"}, as_="staff"
    )
    assert corrected.status_code == 201
    assert (corrected.json["corrects_id"], corrected.json["correction_reason"]) == (original["id"], "提前结束")
    assert (corrected.json["scoring"]["points"], corrected.json["activity_type"]) == (10, "patrol")
    shown = api.get(path, as_="volunteer").json
    assert (shown["state"], shown["corrected_by_id"]) == ("corrected", corrected.json["id"])
    again = api.post(f"{path}/correction", {"ended_at": "2026-03-04T10:30:00+08:00", "reason": "再改"}, as_="staff")
    assert again.status_code == 409


def test_corrections_need_the_right_a_reason_and_known_fields(api, desk, session):
    path = f"/api/v1/activities/{desk().json['id']}/correction"
    before = row_counts(session)
    body = {"ended_at": "2026-03-04T10:00:00+08:00", "reason": "提前结束"}
    for as_, status in [("grid", 403), ("auditor", 403), ("volunteer", 403), ("volunteer2", 404), ("staff2", 404)]:
        assert api.post(path, body, as_=as_).status_code == status, as_
    for bad, field in [
        ({"ended_at": "2026-03-04T10:00:00+08:00"}, "reason"),
        (body | {"participant_id": api.other_volunteer}, "participant_id"),
        (body | {"org_id": 1}, "org_id"),
        (body | {"reason": "长" * 501}, "reason"),
        (body | {"started_at": "2026-03-04 09:00"}, "started_at"),
    ]:
        response = api.post(path, bad, as_="staff")
        assert response.status_code == 422 and field in response.json["errors"], response.json
    assert api.post("/api/v1/activities/999999/correction", body, as_="staff").status_code == 404
    assert row_counts(session) == before


def test_one_activity_is_seen_by_its_volunteer_and_by_staff_in_scope_only(api, desk):
    path = f"/api/v1/activities/{desk().json['id']}"
    statuses = {
        as_: api.get(path, as_=as_).status_code
        for as_ in ("volunteer", "volunteer2", "staff", "staff2", "grid", "auditor", "street")
    }
    assert statuses == {
        "volunteer": 200,
        "volunteer2": 404,
        "staff": 200,
        "staff2": 404,
        "grid": 200,
        "auditor": 200,
        "street": 200,
    }
    assert api.get("/api/v1/activities/99999999999999999999999", as_="staff").status_code == 404
    assert api.get("/api/v1/activities/99999", as_="staff").status_code == 404


def test_the_list_shows_staff_their_scope_and_a_volunteer_only_their_own(api, desk, street):
    mine, theirs = (
        desk().json["id"],
        desk(api.other_volunteer, started_at="2026-03-05T09:00:00+08:00", ended_at="2026-03-05T10:00:00+08:00").json[
            "id"
        ],
    )

    def listed(as_, **query):
        return [item["id"] for item in api.get("/api/v1/activities", as_=as_, **query).json["items"]]

    assert listed("staff") == [theirs, mine]  # newest first
    assert listed("volunteer") == [mine] and listed("volunteer2") == [theirs]
    assert listed("staff2") == []
    assert listed("staff", participant_id=api.me) == [mine]
    assert listed("staff", org_id=street.grid, **{"from": "2026-03-05", "to": "2026-03-05"}) == [theirs]
    assert listed("staff", activity_type="micro_wish", source="staff") == []
    assert listed("volunteer", org_id=street.community, pending="false") == [mine]
    assert api.get("/api/v1/activities", as_="volunteer", participant_id=api.other_volunteer).status_code == 404
    assert api.get("/api/v1/activities", as_="staff", org_id=street.other_community).status_code == 404
    page = api.get("/api/v1/activities", as_="staff", page_size=1, page=2).json
    assert page["page"] == {"page": 2, "page_size": 1, "total": 2} and [item["id"] for item in page["items"]] == [mine]


def test_list_filters_refuse_bad_values_naming_them(api):
    for query, field in [
        ({"from": "2026-02-30"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "to"),
        ({"org_id": "1.5"}, "org_id"),
        ({"participant_id": "99999999999999"}, "participant_id"),
        ({"source": "rumour"}, "source"),
        ({"pending": "perhaps"}, "pending"),
        ({"page_size": "500"}, "page_size"),
    ]:
        response = api.get("/api/v1/activities", as_="staff", **query)
        assert response.status_code == 422 and f"query.{field}" in response.json["errors"], (query, response.json)


def test_every_write_needs_an_idempotency_key_and_a_retry_writes_nothing_more(api, desk, report, street, session):
    scored = desk().json["id"]
    reported = report(started_at="2026-03-06T09:00:00+08:00", ended_at="2026-03-06T10:00:00+08:00").json["id"]

    def service_on(day: int) -> dict:
        return {"started_at": f"2026-03-{day:02}T09:00:00+08:00", "ended_at": f"2026-03-{day:02}T10:00:00+08:00"}

    others = {"org_id": street.grid, "participant_id": api.other_volunteer, "activity_type": "patrol"}
    sheet = {
        "org_id": street.grid,
        "title": "巡逻",
        "activity_type": "patrol",
        "attendees": [{"participant_id": api.other_volunteer}],
    }
    writes = [
        ("/api/v1/activities", "staff", others | service_on(9), others | service_on(10)),
        ("/api/v1/events", "grid", sheet | service_on(11), sheet | service_on(12)),
        ("/api/v1/activities/self-reports", "volunteer2", others | service_on(13), others | service_on(14)),
        (
            f"/api/v1/activities/{reported}/review",
            "staff",
            {"decision": "approve"},
            {"decision": "reject", "reason": "不符"},
        ),
        (
            f"/api/v1/activities/{scored}/correction",
            "staff",
            {"reason": "更正", "travel_minutes": 10},
            {"reason": "另一个"},
        ),
    ]
    for index, (path, as_, body, other_body) in enumerate(writes):
        key = f"once-{index}"
        before = row_counts(session)
        missing = api.post(path, body, as_=as_, key=None)
        assert missing.status_code == 400 and missing.json["code"] == "idempotency_key_missing", path
        assert row_counts(session) == before
        first = api.post(path, body, as_=as_, key=key)
        written = row_counts(session)
        again = api.post(path, body, as_=as_, key=key)
        assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (201, 201, "true"), (
            path
        )
        assert again.json == first.json and row_counts(session) == written
        other = api.post(path, other_body, as_=as_, key=key)
        assert other.status_code == 422 and other.json["code"] == "idempotency_conflict", path
        assert row_counts(session) == written
    assert activity_count(session) == 6  # two before, then one for each write but the review
