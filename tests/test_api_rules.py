"""Rule sets over HTTP: validation, drafts, publishing, the version in force, and simulation."""

from __future__ import annotations

import pytest

from ledger.ruleset_schema import MAX_DOCUMENT_CHARS, default_rules_text
from tests.activity_fixtures import rules_text
from tests.refusals import row_counts


def draft_body(changes: dict | None = None, **more) -> dict:
    """Return a request body holding the default rules with ``changes`` (see ``rules_text``), as JSON text."""
    return {"document": rules_text(changes), "format": "json", **more}


@pytest.fixture
def drafts(api, street):
    """Return a callable with which the street admin stores a draft at an org; it returns the response."""

    def store(at=None, changes=None, *, as_="street", **more):
        return api.post(f"/api/v1/orgs/{at or street.street}/rule-sets", draft_body(changes, **more), as_=as_)

    return store


def test_validating_a_document_writes_nothing_and_needs_no_idempotency_key(api, session):
    before = row_counts(session)
    checked = api.post("/api/v1/rule-sets/validate", {"document": default_rules_text()}, as_="volunteer", key=None)
    assert checked.status_code == 200
    assert checked.json["ok"] is True and checked.json["effective_from"] == "2025-01-01"
    assert "patrol" in checked.json["activity_types"]
    as_json = api.post("/api/v1/rule-sets/validate", draft_body({"name": "新规则"}), as_="staff", key=None)
    assert as_json.status_code == 200 and as_json.json["name"] == "新规则"
    assert row_counts(session) == before
    assert (
        api.post("/api/v1/rule-sets/validate", {"document": default_rules_text()}, as_=None, key=None).status_code
        == 401
    )


def test_an_invalid_document_lists_every_problem_by_dotted_path(api):
    invalid = api.post(
        "/api/v1/rule-sets/validate",
        draft_body({"activity_types.patrol.points": True, "effective_from": "2026-13-01"}),
        as_="street",
        key=None,
    )
    assert invalid.status_code == 422 and invalid.json["code"] == "rule_set_invalid"
    assert {"activity_types.patrol.points", "effective_from"} <= set(invalid.json["errors"])
    broken = api.post("/api/v1/rule-sets/validate", {"document": "name: [unclosed"}, as_="street", key=None)
    assert broken.status_code == 422 and "line" in broken.json["errors"]["document"][0]


def test_validation_refuses_a_malformed_request_naming_the_field(api):
    for body, field in [
        ({"document": 5}, "document"),
        ({"document": ""}, "document"),
        ({}, "document"),
        ({"document": "x" * (MAX_DOCUMENT_CHARS + 1)}, "document"),
        ({"document": "name: x", "format": "xml"}, "format"),
        ({"document": "name: x", "status": "published"}, "status"),
    ]:
        response = api.post("/api/v1/rule-sets/validate", body, as_="street", key=None)
        assert response.status_code == 422 and field in response.json["errors"], (field, response.json)


def test_a_street_admin_keeps_a_draft_edits_it_and_publishes_it(api, drafts, street, default_rules):
    created = drafts(changes={"name": "城东规则", "effective_from": "2026-07-01"})
    assert created.status_code == 201
    assert (created.json["status"], created.json["version"], created.json["org_id"]) == ("draft", 1, street.street)
    version = f"/api/v1/rule-sets/{created.json['id']}"
    edited = api.post(
        f"{version}/document", draft_body({"name": "城东规则（修订）", "effective_from": "2026-07-01"}), as_="street"
    )
    assert edited.status_code == 200 and edited.json["document"]["name"] == "城东规则（修订）"
    published = api.post(f"{version}/publish", as_="street")
    assert published.status_code == 200 and published.json["status"] == "published" and published.json["published_at"]
    assert api.get(version, as_="auditor").json["document"]["activity_types"]["patrol"]["points"] == 10

    refused = api.post(f"{version}/document", draft_body(), as_="street")
    assert refused.status_code == 409 and refused.json["code"] == "rule_set_published"
    assert api.post(f"{version}/publish", as_="street").status_code == 409
    listed = api.get(f"/api/v1/orgs/{street.street}/rule-sets", as_="staff")
    assert listed.status_code == 404  # the street is above community staff's scope
    assert [
        item["version"] for item in api.get(f"/api/v1/orgs/{street.street}/rule-sets", as_="auditor").json["items"]
    ] == [1]

    def in_force(day):
        return api.get(f"/api/v1/orgs/{street.community}/rule-sets/in-force", as_="volunteer", on=day).json

    assert (in_force("2026-07-02")["org_id"], in_force("2026-06-30")["org_id"]) == (street.street, street.district)


def test_a_document_can_be_published_as_it_is_stored(drafts):
    created = drafts(publish=True)
    assert created.status_code == 201 and created.json["status"] == "published"


def test_rule_sets_outside_your_scope_are_not_found_and_without_the_right_forbidden(api, drafts, street, session):
    draft = drafts(street.community).json["id"]
    before = row_counts(session)
    for org_id, as_, status in [
        (street.street, "staff", 404),
        (street.community, "staff", 403),
        (street.community, "staff2", 404),
        (street.community, "grid", 404),  # the community lies above the grid
        (street.street, "auditor", 403),
        (street.community, "volunteer", 403),
        (street.district, "street", 404),
    ]:
        assert drafts(org_id, as_=as_).status_code == status, (org_id, as_)
    version = f"/api/v1/rule-sets/{draft}"
    for as_, status in [("staff", 403), ("staff2", 404), ("auditor", 403), ("volunteer", 403)]:
        assert api.post(f"{version}/publish", as_=as_).status_code == status, as_
        assert api.post(f"{version}/document", draft_body(), as_=as_).status_code == status, as_
    assert row_counts(session) == before
    assert {as_: api.get(version, as_=as_).status_code for as_ in ("staff", "staff2", "volunteer", "grid")} == {
        "staff": 200,
        "staff2": 404,
        "volunteer": 200,
        "grid": 404,
    }
    assert api.get("/api/v1/rule-sets/99999", as_="admin").status_code == 404
    assert api.get("/api/v1/rule-sets/99999999999", as_="admin").status_code == 404


def test_a_draft_refuses_bad_input_naming_the_field(drafts, session):
    before = row_counts(session)
    for more, field in [
        ({"publish": 1}, "publish"),
        ({"publish": "true"}, "publish"),
        ({"org_id": 1}, "org_id"),
        ({"status": "published"}, "status"),
        ({"hash": "ab"}, "hash"),
        ({"format": "toml"}, "format"),
    ]:
        response = drafts(**more)
        assert response.status_code == 422 and field in response.json["errors"], (more, response.json)
    invalid = drafts(changes={"activity_types.patrol.points": "10"})
    assert invalid.status_code == 422 and "activity_types.patrol.points" in invalid.json["errors"]
    assert row_counts(session) == before


def test_the_version_in_force_is_found_up_the_tree(api, street, default_rules):
    path = f"/api/v1/orgs/{street.grid}/rule-sets/in-force"
    found = api.get(path, as_="grid", on="2026-03-04")
    assert found.status_code == 200
    assert (found.json["id"], found.json["org_id"]) == (default_rules, street.district) and found.json["document"]
    assert api.get(path, as_="grid").json["id"] == default_rules  # today
    missing = api.get(path, as_="grid", on="2024-06-01")
    assert missing.status_code == 404 and "on" in missing.json["errors"]
    assert "query.on" in api.get(path, as_="grid", on="2026-02-30").json["errors"]
    assert api.get(f"/api/v1/orgs/{street.other_community}/rule-sets/in-force", as_="grid").status_code == 404
    assert api.get(f"/api/v1/orgs/{street.grid}/rule-sets", as_="volunteer").json["items"] == []


@pytest.fixture
def served(api, street, default_rules):
    """Two hours of patrol by ``me`` on a Wednesday in March 2026: 20 points under the default rules."""
    body = {
        "org_id": street.grid,
        "participant_id": api.me,
        "activity_type": "patrol",
        "started_at": "2026-03-04T09:00:00+08:00",
        "ended_at": "2026-03-04T11:00:00+08:00",
    }
    assert api.post("/api/v1/activities", body, as_="staff").status_code == 201


MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def test_a_simulation_compares_a_draft_with_the_rules_in_force_and_writes_nothing(api, drafts, street, served, session):
    before = row_counts(session)
    richer = {"activity_types.patrol.points": 20}
    by_document = api.post(
        "/api/v1/rule-sets/simulate",
        {"org_id": street.community, **draft_body(richer), **MARCH},
        as_="street",
        key=None,
    )
    assert by_document.status_code == 200
    assert (by_document.json["points_before"], by_document.json["points_after"], by_document.json["activities"]) == (
        20,
        40,
        1,
    )
    [change] = by_document.json["participants"]
    assert (change["participant_id"], change["changed"], change["before"]["points"], change["after"]["points"]) == (
        api.me,
        True,
        20,
        40,
    )
    assert row_counts(session) == before
    draft = drafts(changes=richer).json["id"]
    by_draft = api.post(
        "/api/v1/rule-sets/simulate", {"org_id": street.community, "draft_id": draft, **MARCH}, as_="street", key=None
    )
    assert by_draft.status_code == 200 and by_draft.json["participants"] == by_document.json["participants"]


def test_a_simulation_needs_the_right_to_manage_rules_and_a_sound_request(api, street, default_rules, served):
    def simulate(body, as_="street"):
        return api.post("/api/v1/rule-sets/simulate", body, as_=as_, key=None)

    request = {"org_id": street.community, **draft_body(), **MARCH}
    for as_, status in [("staff", 403), ("staff2", 404), ("auditor", 403), ("volunteer", 403), ("grid", 404)]:
        assert simulate(request, as_).status_code == status, as_
    assert (
        simulate({"org_id": street.community, "draft_id": default_rules, **MARCH}).status_code == 404
    )  # at the district
    for body, field in [
        ({"org_id": street.community, **MARCH}, "draft_id"),
        (request | {"draft_id": 1}, "draft_id"),
        (request | {"to": "2026-02-01"}, "to"),
        (request | {"to": "2027-06-01"}, "to"),
        (request | {"from": "2026-02-30"}, "from"),
        (request | {"org_id": "1"}, "org_id"),
        (request | {"balance": 1}, "balance"),
        (request | {"from": "2024-01-01", "to": "2024-12-31"}, "to"),  # no rules in force then
        (request | draft_body({"effective_from": "2026-07-01"}), "document"),  # the draft does not cover March
    ]:
        response = simulate(body)
        assert response.status_code in (404, 422) and field in response.json["errors"], (field, response.json)
    assert simulate(request | {"document": "name: [unclosed"}).json["code"] == "rule_set_invalid"


def test_every_rule_set_write_needs_an_idempotency_key_and_a_retry_writes_nothing_more(api, drafts, street, session):
    first_draft, second_draft = drafts().json["id"], drafts().json["id"]
    writes = [
        (f"/api/v1/orgs/{street.community}/rule-sets", draft_body({"name": "甲"}), draft_body({"name": "乙"})),
        (f"/api/v1/rule-sets/{first_draft}/document", draft_body({"name": "丙"}), draft_body({"name": "丁"})),
        (f"/api/v1/rule-sets/{second_draft}/publish", None, {}),
    ]
    for index, (path, body, other_body) in enumerate(writes):
        key = f"rules-{index}"
        before = row_counts(session)
        missing = api.post(path, body, as_="street", key=None)
        assert missing.status_code == 400 and missing.json["code"] == "idempotency_key_missing", path
        assert row_counts(session) == before
        first = api.post(path, body, as_="street", key=key)
        written = row_counts(session)
        again = api.post(path, body, as_="street", key=key)
        assert first.status_code in (200, 201) and again.headers.get("Idempotent-Replayed") == "true", path
        assert (again.status_code, again.json) == (first.status_code, first.json) and row_counts(session) == written
        other = api.post(path, other_body, as_="street", key=key)
        assert other.status_code == 422 and other.json["code"] == "idempotency_conflict", path


def test_publishing_takes_no_body_and_refuses_one_with_fields(api, drafts, session):
    version = f"/api/v1/rule-sets/{drafts().json['id']}/publish"
    before = row_counts(session)
    for smuggled in ({"status": "published"}, {"published_by_id": 1}, [1]):
        response = api.post(version, smuggled, as_="street")
        assert response.status_code == 422, (smuggled, response.json)
    assert row_counts(session) == before
    assert api.post(version, {}, as_="street").status_code == 200
