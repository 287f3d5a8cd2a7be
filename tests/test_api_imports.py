"""Bulk import over HTTP: upload a sheet to check it or import it; templates; limits and scopes.

The API's volunteers ``me`` (V00001) and the other one (V00002) are both called 李明 and live
in C1's first grid; the default rules are in force.
"""

from __future__ import annotations

import io
import itertools

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from ledger.models import Activity
from tests.conftest import valid_id_number
from tests.refusals import row_counts

SIGN_IN = "志愿者编号,姓名,服务类型,服务日期,开始时间,结束时间\n"
GOOD = "V00001,李明,巡逻,2026-03-04,09:00,11:00\nV00002,李明,巡逻,2026-03-04,09:00,11:00\n"
BAD = "V00009,王芳,巡逻,2026-03-04,09:00,11:00\nV00001,李明,巡逻,2026-02-30,09:00,11:00\n"

_keys = itertools.count(1)


@pytest.fixture
def upload(api, street, default_rules):
    """Return a callable that uploads a file to an import route; it returns the response."""

    def send(content, *, to="", sheet="activities", org_id=None, as_="staff", key="fresh", name="sheet.csv", language=None):
        path = f"/api/v1/orgs/{org_id or street.community}/imports/{sheet}{to}"
        body = content.encode() if isinstance(content, str) else content
        key = f"upload-{next(_keys)}" if key == "fresh" else key
        return api.client.post(
            path,
            data={"file": (io.BytesIO(body), name)},
            headers=api.headers(as_, key, language),
            content_type="multipart/form-data",
        )

    return send


def activities(session) -> int:
    return session.scalar(select(func.count()).select_from(Activity))


def test_a_check_reports_every_bad_row_with_its_line_and_reason_and_writes_nothing(session, upload):
    before = row_counts(session)

    response = upload(SIGN_IN + GOOD + BAD, to="/check", key=None)

    assert response.status_code == 200, response.json
    report = response.json
    assert (report["written"], report["rows"], report["imported"], report["bad_rows"]) == (False, 4, 2, 2)
    assert [(p["line"], p["kind"], p["kind_label"], p["field"], p["column"]) for p in report["problems"]] == [
        (4, "unknown_person", "查无此人", "volunteer_number", "志愿者编号"),
        (5, "bad_date", "日期或时间有误", "date", "服务日期"),
    ]
    assert row_counts(session) == before


def test_an_import_writes_the_good_rows_and_importing_again_writes_nothing(session, upload):
    first = upload(SIGN_IN + GOOD + BAD, language="en")
    again = upload(SIGN_IN + GOOD + BAD)

    assert first.status_code == 201 and (first.json["written"], first.json["imported"]) == (True, 2)
    assert first.json["problems"][0]["kind_label"] == "unknown person"
    assert (again.json["imported"], again.json["already_imported"], again.json["bad_rows"]) == (0, 2, 2)
    assert activities(session) == 2


def test_a_retry_with_the_same_key_replays_the_answer_and_another_file_under_it_is_refused(session, upload):
    first = upload(SIGN_IN + GOOD, key="sheet-1")
    retry = upload(SIGN_IN + GOOD, key="sheet-1", name="renamed.csv")
    other = upload(SIGN_IN + GOOD.splitlines()[0], key="sheet-1")

    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == first.json
    assert other.status_code == 422 and other.json["code"] == "idempotency_conflict"
    assert activities(session) == 2


def test_an_import_without_an_idempotency_key_is_refused(upload):
    response = upload(SIGN_IN + GOOD, key=None)

    assert response.status_code == 400 and response.json["code"] == "idempotency_key_missing"


def test_an_xlsx_workbook_uploads_like_a_csv_file(session, upload):
    workbook = Workbook()
    for row in (SIGN_IN + GOOD).splitlines():
        workbook.active.append(row.split(","))
    content = io.BytesIO()
    workbook.save(content)

    response = upload(content.getvalue(), name="签到表.xlsx")

    assert response.status_code == 201, response.json
    assert response.json["imported"] == 2


def test_a_roster_registers_volunteers_for_staff_who_manage_participants(upload):
    roster = f"姓名,身份证号,志愿者编号,注册日期\n陈静,{valid_id_number()},R001,2026-03-01\n"

    by_staff = upload(roster, sheet="volunteers")
    by_grid = upload(roster, sheet="volunteers", as_="grid")

    assert by_staff.status_code == 201 and by_staff.json["imported"] == 1
    assert by_grid.status_code == 404  # a grid worker's scope is the grid, not the community


@pytest.mark.parametrize(
    ("user", "org", "status"),
    [
        ("staff2", "community", 404),
        ("volunteer", "community", 403),
        ("auditor", "community", 403),
        ("grid", "community", 404),
        ("grid", "grid", 201),
        ("street", "community", 201),
    ],
)
def test_who_may_import_a_sign_in_sheet_where(upload, street, user, org, status):
    response = upload(SIGN_IN + GOOD, as_=user, org_id=getattr(street, org))

    assert response.status_code == status, response.json


def test_a_sheet_whose_columns_are_wrong_is_422_naming_the_file(upload):
    response = upload("编号,名字\nV00001,李明\n", to="/check")

    assert response.status_code == 422 and "unknown column '编号'" in response.json["errors"]["file"][0]


def test_an_upload_without_a_file_is_422(api, street, default_rules):
    response = api.client.post(
        f"/api/v1/orgs/{street.community}/imports/activities/check",
        data={"other": "x"},
        headers=api.headers("staff"),
        content_type="multipart/form-data",
    )

    assert response.status_code == 422 and "files.file" in response.json["errors"]


def test_an_upload_larger_than_the_body_limit_is_413(app, upload):
    app.config["MAX_CONTENT_LENGTH"] = 2000

    response = upload(SIGN_IN + GOOD * 40, to="/check", key=None)

    assert response.status_code == 413 and response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("format", "media_type"), [("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")])
def test_the_template_downloads_as_an_attachment(api, format, media_type):
    response = api.get("/api/v1/imports/activities/template", as_="volunteer", format=format)

    assert response.status_code == 200 and response.content_type.startswith(media_type)
    assert f'filename="activities-template.{format}"' in response.headers["Content-Disposition"]


def test_the_template_needs_a_signed_in_user(api):
    assert api.get("/api/v1/imports/volunteers/template", as_=None).status_code == 401
