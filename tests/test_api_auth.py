"""Signing in, tokens, the error format, idempotency and the org resource, through the HTTP client."""

from __future__ import annotations

import pytest

from ledger.api import IDEMPOTENCY_KEY_PARAMETER
from ledger.db import db
from ledger.models import AppUser
from ledger.users import set_password


@pytest.fixture
def password_user(session, write):
    def create():
        from ledger.users import ensure_user

        user = ensure_user(session, "alice", "爱丽丝")
        set_password(user, "correct horse battery")
        return user.id

    return write(create)


def test_login_gives_a_token_that_works_until_logout(client, password_user):
    login = client.post("/api/v1/auth/login", json={"username": "alice", "password": "correct horse battery"})
    assert login.status_code == 201
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).json["username"] == "alice"
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "body",
    [{"username": "alice", "password": "wrong horse battery"}, {"username": "nobody", "password": "correct horse battery"}],
)
def test_a_wrong_name_or_password_is_one_answer_that_says_neither(client, password_user, body):
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 401 and response.json["detail"] == "wrong user name or password"


def test_login_attempts_are_rate_limited(client, password_user):
    statuses = [
        client.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong horse battery"}).status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429


def test_an_overlong_password_is_refused_without_hashing_it(client, password_user):
    response = client.post("/api/v1/auth/login", json={"username": "alice", "password": "x" * 10_000})
    assert response.status_code == 422 and "password" in response.json["errors"]


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic YWxpY2U6eA==", "Bearer vl_" + "0" * 43])
def test_requests_without_a_valid_token_are_401(client, header):
    response = client.get("/api/v1/orgs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_a_deactivated_users_tokens_stop_working(api, session, write):
    def deactivate():
        user = session.query(AppUser).filter_by(username="api-staff").one()
        user.is_active = False

    write(deactivate)
    assert api.get("/api/v1/orgs", as_="staff").status_code == 401


def test_errors_speak_chinese_by_default_and_english_on_request(api):
    chinese = api.post("/api/v1/orgs", {"code": "X"}, as_="street")
    english = api.post("/api/v1/orgs", {"code": "X"}, as_="street", language="en")
    assert chinese.json["title"] == "输入有误" and english.json["title"] == "Invalid input"
    assert set(english.json["errors"]) == {"name", "kind"}


def test_a_write_without_an_idempotency_key_is_400(api):
    response = api.post("/api/v1/orgs", {"code": "C9", "name": "九", "kind": "community", "parent_id": 2}, as_="street", key=None)
    assert response.status_code == 400 and response.json["code"] == "idempotency_key_missing"


#: POSTs that write nothing, or sign in and out: they take no Idempotency-Key.
POSTS_WITHOUT_A_KEY = {
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/rule-sets/validate",
    "/api/v1/rule-sets/simulate",
    "/api/v1/verify",
    "/api/v1/orgs/{org_id}/imports/{sheet_name}/check",
}


def test_every_write_without_a_key_is_400_before_its_body_is_read_and_only_writes_need_and_document_one(api, client):
    document = client.get("/api/v1/openapi.json").json
    posts = {path: operations for path, operations in document["paths"].items() if "post" in operations}
    assert POSTS_WITHOUT_A_KEY <= set(posts)
    for path in posts.keys() - {"/api/v1/auth/logout"}:  # signing out without a key: test_api_authorization
        url = path
        for parameter in posts[path].get("parameters", []):
            schema = parameter["schema"]
            url = url.replace("{" + parameter["name"] + "}", str(schema["enum"][0] if "enum" in schema else schema.get("minimum", 1)))
        response = api.post(url, {"no_such_field": 1}, as_="admin", key=None)
        documented = [parameter for parameter in posts[path]["post"].get("parameters", []) if parameter["in"] == "header"]
        assert documented == ([] if path in POSTS_WITHOUT_A_KEY else [IDEMPOTENCY_KEY_PARAMETER]), path
        if path in POSTS_WITHOUT_A_KEY:
            assert response.json["code"] != "idempotency_key_missing", path
        else:
            assert response.status_code == 400 and response.json["code"] == "idempotency_key_missing", (path, response.json)
            assert list(response.json["errors"]) == ["Idempotency-Key"], path
    signed_out = api.post("/api/v1/orgs", {"no_such_field": 1}, as_=None, key=None)
    assert signed_out.status_code == 401


def test_a_retry_with_the_same_key_returns_the_first_response_and_writes_nothing(api, street):
    body = {"code": "C9", "name": "九社区", "kind": "community", "parent_id": street.street}
    first = api.post("/api/v1/orgs", body, as_="street", key="new-community")
    again = api.post("/api/v1/orgs", body, as_="street", key="new-community")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    other = api.post("/api/v1/orgs", body | {"code": "C10"}, as_="street", key="new-community")
    assert other.status_code == 422 and other.json["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"parent_id": True}, "parent_id"),
        ({"parent_id": "2"}, "parent_id"),
        ({"parent_id": 2.5}, "parent_id"),
        ({"parent_id": 10**40}, "parent_id"),
        ({"name": "长" * 201}, "name"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"balance": 100}, "balance"),
        ({"org_id": 1}, "org_id"),
        ({"hash": "ab"}, "hash"),
        ({"status": "published"}, "status"),
    ],
)
def test_bad_input_is_a_clear_4xx_naming_the_field(api, street, body, field):
    valid = {"code": "C9", "name": "九社区", "kind": "community", "parent_id": street.street}
    response = api.post("/api/v1/orgs", valid | body, as_="street")
    assert response.status_code == 422 and field in response.json["errors"]


def test_an_oversized_body_is_413(api, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = api.post("/api/v1/orgs", {"code": "C9", "name": "x" * 2000, "kind": "community"}, as_="street")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_a_community_outside_your_scope_is_not_found_not_forbidden(api, street):
    assert api.get(f"/api/v1/orgs/{street.other_community}", as_="staff").status_code == 404
    assert api.get(f"/api/v1/orgs/{street.community}", as_="staff").status_code == 200


def test_staff_list_only_the_orgs_of_their_community(api, street):
    codes = {org["code"] for org in api.get("/api/v1/orgs", as_="staff").json["items"]}
    assert codes == {"C1", "C1-G1", "C1-G1-1"}


def test_staff_cannot_add_a_community_and_a_street_admin_can(api, street):
    body = {"code": "C9", "name": "九社区", "kind": "community", "parent_id": street.street}
    assert api.post("/api/v1/orgs", body, as_="staff").status_code == 404  # the street is outside their scope
    assert api.post("/api/v1/orgs", body, as_="street").status_code == 201


def test_the_docs_page_works_without_the_internet(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "/api/v1/docs/static/swagger-ui-bundle.js" in page.get_data(as_text=True)
    with client.get("/api/v1/docs/static/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and b"SwaggerUIBundle" in script.get_data()


def test_text_with_a_nul_character_is_refused_before_it_reaches_the_database(api, street):
    body = {"code": "C9", "name": "九\u0000社区", "kind": "community", "parent_id": street.street}
    response = api.post("/api/v1/orgs", body, as_="street")
    assert response.status_code == 400 and "NUL" in response.json["detail"]
