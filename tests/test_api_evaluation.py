"""The annual evaluation over HTTP: downloads, the freeze, changes since, the employers' feedback, remarks."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from ledger.exports import BOM
from tests.evaluation_fixtures import correct_alices_patrol, season  # noqa: F401 - the fixture

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(response) -> dict[str, list[tuple]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"] == XLSX and response.headers["Content-Disposition"].startswith("attachment")
    book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.data.startswith(BOM)
    return list(csv.reader(io.StringIO(response.data[len(BOM) :].decode(), newline="")))


def test_staff_download_their_communitys_evaluation_as_a_workbook(api, season, street):
    sheets = workbook(api.get(f"/api/v1/orgs/{street.community}/evaluations/2026/export", as_="staff"))
    assert list(sheets) == ["参与者", "在职党员", "共建单位"]
    names = {row[1] for row in sheets["参与者"][1:]}
    assert {"王丽", "赵党员", "锦绣物业", "'=HYPERLINK(\"x\")"} <= names and "陈红" not in names  # Carol lives in C2
    assert sheets["在职党员"][1][1:4] == ("赵党员", "示范区税务局", "幸福社区")


def test_a_csv_download_is_one_sheet_in_the_language_asked(api, season, street):
    path = f"/api/v1/orgs/{street.street}/evaluations/2026/export"
    rows = csv_rows(api.get(path, as_="auditor", format="csv", language="en"))
    assert rows[0][:3] == ["ID", "Name", "Category"] and len(rows) == 1 + 5 + 2  # and the api fixture's two volunteers
    units = csv_rows(api.client.get(path, query_string={"format": "csv", "sheet": "units"}, headers={**api.headers("street"), "Accept-Language": "en"}))
    assert units[0][1] == "Unit" and units[1][1:3] == ["锦绣物业", "Property company"]


def test_who_may_download_and_freeze(api, season, street):
    download = f"/api/v1/orgs/{{}}/evaluations/2026/export"
    statuses = {
        (who, org): api.get(download.format(org), as_=who).status_code
        for who, org in [
            ("staff", street.community),
            ("staff2", street.community),
            ("street", street.street),
            ("auditor", street.street),
            ("grid", street.grid),
            ("volunteer", street.community),
            ("admin", street.district),
        ]
    }
    assert statuses == {
        ("staff", street.community): 200,
        ("staff2", street.community): 404,
        ("street", street.street): 200,
        ("auditor", street.street): 200,
        ("grid", street.grid): 403,
        ("volunteer", street.community): 403,
        ("admin", street.district): 200,
    }
    freeze = f"/api/v1/orgs/{street.community}/evaluations/2026/freeze"
    assert [api.post(freeze, as_=who).status_code for who in ("staff", "auditor", "volunteer")] == [403, 403, 403]
    assert api.post(freeze, as_="street").status_code == 201


def test_a_street_admin_freezes_once_and_a_retry_gets_the_first_answer(api, season, street):
    path = f"/api/v1/orgs/{street.street}/evaluations/2026/freeze"
    first = api.post(path, as_="street", key="freeze-2026")
    assert first.status_code == 201 and first.json["frozen"] is True
    assert [sheet["rows"] for sheet in first.json["sheets"]] == [7, 1, 1]
    again = api.post(path, as_="street", key="freeze-2026")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    refused = api.post(path, as_="street")
    assert refused.status_code == 409 and refused.json["errors"] == {"year": [refused.json["errors"]["year"][0]]}
    assert api.post(path, as_="street", key=None).status_code == 400
    status = api.get(f"/api/v1/orgs/{street.street}/evaluations/2026", as_="auditor").json
    assert status["frozen"] is True and status["frozen_at"] == first.json["frozen_at"]


def test_a_frozen_download_does_not_move_after_a_correction_and_the_changes_show_it(api, season, street, desk):
    export = f"/api/v1/orgs/{street.street}/evaluations/2026/export"
    assert api.get(f"/api/v1/orgs/{street.street}/evaluations/2026/changes", as_="street").status_code == 404
    api.post(f"/api/v1/orgs/{street.street}/evaluations/2026/freeze", as_="street")
    before = api.get(export, as_="street")
    assert "frozen" in before.headers["Content-Disposition"]
    correct_alices_patrol(desk, season)
    assert api.get(export, as_="street").data == before.data
    assert api.get(export, as_="street", live="true").data != before.data
    changes = api.get(f"/api/v1/orgs/{street.street}/evaluations/2026/changes", as_="auditor", limit=1).json
    assert changes["changes"][0]["participant_id"] == season.alice and changes["changes_total"] > 1
    assert {"sheet": "participants", "participant_id": season.alice, "field": "service_minutes", "frozen": 300, "current": 180} in api.get(
        f"/api/v1/orgs/{street.street}/evaluations/2026/changes", as_="auditor"
    ).json["changes"]
    assert changes["transactions_total"] == 2 and changes["transactions"][0]["participant_id"] == season.alice


def test_the_employer_feedback_downloads_as_a_workbook_or_one_employers_csv(api, season, street):
    path = f"/api/v1/orgs/{street.street}/employer-feedback/2026/export"
    remark = api.post(f"/api/v1/participants/{season.party_member}/remarks", {"year": 2026, "remark": "表现突出"}, as_="staff")
    assert remark.status_code == 201 and remark.json["remark"] == "表现突出"
    sheets = workbook(api.get(path, as_="street"))
    assert list(sheets) == ["示范区税务局"] and sheets["示范区税务局"][1][0] == "赵党员"
    assert sheets["示范区税务局"][1][-1] == "表现突出"
    rows = csv_rows(api.get(path, as_="street", format="csv", employer_unit_id=str(season.employer), language="en"))
    assert rows[0][0] == "Name" and ["Completion rate", "100.0%"] in rows and ["Report-in rate", ""] in rows
    refused = api.get(path, as_="street", format="csv")
    assert refused.status_code == 422 and "employer_unit_id" in refused.json["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"format": "pdf"}, "format"), ({"sheet": "people"}, "sheet"), ({"language": "fr"}, "language"), ({"live": "maybe"}, "live")],
)
def test_bad_download_options_are_refused_naming_them(api, street, query, field):
    response = api.get(f"/api/v1/orgs/{street.street}/evaluations/2026/export", as_="street", **query)
    assert response.status_code == 422 and f"query.{field}" in response.json["errors"]


def test_a_year_not_yet_begun_is_refused_and_one_out_of_range_is_not_found(api, street, default_rules):
    response = api.get(f"/api/v1/orgs/{street.street}/evaluations/2030/export", as_="street")
    assert response.status_code == 422 and response.json["errors"] == {"year": ["2030 has not begun yet"]}
    assert api.get(f"/api/v1/orgs/{street.street}/evaluations/1999/export", as_="street").status_code == 404


def test_remarks_are_for_staff_and_for_party_members_only(api, season, street):
    path = f"/api/v1/participants/{{}}/remarks"
    assert api.post(path.format(season.party_member), {"year": 2026, "remark": "好"}, as_="volunteer").status_code in (403, 404)
    assert api.post(path.format(season.party_member), {"year": 2026, "remark": "好"}, as_="staff2").status_code == 404
    not_member = api.post(path.format(season.alice), {"year": 2026, "remark": "好"}, as_="staff")
    assert not_member.status_code == 404 and "participant_id" in not_member.json["errors"]
    for body, field in [({"year": 2026, "remark": ""}, "remark"), ({"year": 1990, "remark": "好"}, "year"), ({"year": 2026}, "remark")]:
        response = api.post(path.format(season.party_member), body, as_="staff")
        assert response.status_code == 422 and field in response.json["errors"], response.json
