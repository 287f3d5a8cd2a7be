"""Service certificates over HTTP: issuing, reading, the PDF, and the public check of a code.

The API volunteer ``me`` (李明, V00001, of C1's first grid) patrols two hours on 2026-03-04 and
on 2026-03-11, recorded by community staff.
"""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}
PUBLIC_FIELDS = {
    "number",
    "holder",
    "org_name",
    "period_from",
    "period_to",
    "service_minutes",
    "service_hours",
    "activity_count",
    "issued_on",
    "matches_ledger",
}


@pytest.fixture
def patrols(api, street, default_rules):
    """Record 李明's two March patrols as staff; return the first activity's id."""
    ids = []
    for day in ("04", "11"):
        body = {
            "org_id": street.grid,
            "participant_id": api.me,
            "activity_type": "patrol",
            "started_at": f"2026-03-{day}T09:00:00+08:00",
            "ended_at": f"2026-03-{day}T11:00:00+08:00",
        }
        ids.append(api.post("/api/v1/activities", body, as_="staff").json["id"])
    return ids[0]


@pytest.fixture
def issued(api, patrols):
    """The volunteer's own certificate of March, issued by themselves."""
    response = api.post("/api/v1/certificates", {"participant_id": api.me, **MARCH}, as_="volunteer")
    assert response.status_code == 201, response.json
    return response.json


def test_a_volunteer_issues_their_own_certificate_downloads_it_and_its_code_verifies(api, issued):
    pdf = api.get(f"/api/v1/certificates/{issued['id']}/pdf", as_="volunteer")
    check = api.get(f"/api/v1/certificate-checks/{issued['code']}", as_=None)

    assert (issued["service_minutes"], issued["activity_count"], issued["org_name"]) == (240, 2, "幸福社区")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert f'filename="{issued["number"]}.pdf"' in pdf.headers["Content-Disposition"]
    text = "".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages).split())
    assert "志愿服务记录证明" in text and "兹证明李明" in text and issued["code"] in text
    assert "http://localhost/certificates/check" in text
    assert check.status_code == 200
    assert set(check.json) == PUBLIC_FIELDS
    assert (check.json["holder"], check.json["service_hours"], check.json["matches_ledger"]) == ("李*", "4小时", True)


def test_a_correction_after_issuing_makes_the_check_say_it_no_longer_matches(api, issued, patrols):
    corrected = api.post(
        f"/api/v1/activities/{patrols}/correction", {"ended_at": "2026-03-04T10:00:00+08:00", "reason": "签退时间有误"}, as_="staff"
    )
    assert corrected.status_code == 201, corrected.json

    check = api.get(f"/api/v1/certificate-checks/{issued['code']}", as_=None)
    read = api.get(f"/api/v1/certificates/{issued['id']}", as_="volunteer")
    pdf = api.get(f"/api/v1/certificates/{issued['id']}/pdf", as_="volunteer")

    assert check.json["matches_ledger"] is False and check.json["service_minutes"] == 240
    assert read.json["matches_ledger"] is False
    assert pdf.status_code == 409 and pdf.json["code"] == "conflict"


@pytest.mark.parametrize(
    ("user", "whose", "status"),
    [
        ("volunteer", "me", 201),
        ("volunteer2", "me", 404),
        ("staff", "me", 201),
        ("grid", "me", 201),
        ("staff2", "me", 404),
        ("auditor", "me", 403),
        ("street", "me", 201),
    ],
)
def test_who_may_issue_a_certificate_for_whom(api, patrols, user, whose, status):
    response = api.post("/api/v1/certificates", {"participant_id": getattr(api, whose), **MARCH}, as_=user)

    assert response.status_code == status, response.json


@pytest.mark.parametrize(("user", "status"), [("volunteer", 200), ("volunteer2", 404), ("staff2", 404), ("auditor", 200)])
def test_who_may_read_and_download_a_certificate(api, issued, user, status):
    assert api.get(f"/api/v1/certificates/{issued['id']}", as_=user).status_code == status
    assert api.get(f"/api/v1/certificates/{issued['id']}/pdf", as_=user).status_code == status


def test_a_participants_certificates_are_listed_newest_first(api, issued):
    again = api.post("/api/v1/certificates", {"participant_id": api.me, **MARCH}, as_="staff").json

    listed = api.get("/api/v1/certificates", as_="volunteer", participant_id=api.me).json

    assert [item["number"] for item in listed["items"]] == [again["number"], issued["number"]]
    assert api.get("/api/v1/certificates", as_="volunteer2", participant_id=api.me).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period_from": "2026-06-01", "period_to": "2026-06-30"}, "period_from"),
        ({"period_from": "2026-03-31", "period_to": "2026-03-01"}, "period_to"),
        ({"period_from": "2026-03-01", "period_to": "2099-03-31"}, "period_to"),
        ({**MARCH, "service_minutes": 6000}, "service_minutes"),
    ],
)
def test_a_bad_request_for_a_certificate_is_422_naming_the_field(api, patrols, body, field):
    response = api.post("/api/v1/certificates", {"participant_id": api.me, **body}, as_="staff")

    assert response.status_code == 422 and field in response.json["errors"]


def test_an_unknown_code_is_not_found_and_checks_are_rate_limited(api, issued):
    assert api.get("/api/v1/certificate-checks/0000-0000-0000-0000", as_=None).status_code == 404
    statuses = {api.get("/api/v1/certificate-checks/nonsense", as_=None).status_code for _ in range(60)}

    assert statuses == {404, 429}


def test_the_check_page_shows_the_certificate_and_whether_it_matches(client, issued):
    page = client.get("/certificates/check", query_string={"code": issued["code"].lower()})
    missing = client.get("/certificates/check", query_string={"code": "0000-0000-0000-0000"})
    form = client.get("/certificates/check")

    html = page.get_data(as_text=True)
    assert page.status_code == 200 and issued["number"] in html and "李*" in html and "与台账一致" in html
    assert "李明" not in html
    assert missing.status_code == 404 and "未找到" in missing.get_data(as_text=True)
    assert form.status_code == 200 and 'name="code"' in form.get_data(as_text=True)
