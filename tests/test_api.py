"""The HTTP edge: health probes, the front page, and one error format for everything."""

from __future__ import annotations

def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "database": "ok", "migrations": "current"}


def test_readyz_is_unavailable_until_the_database_is_migrated(make_app, empty_database_url):
    client = make_app(empty_database_url).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json["migrations"] == "pending"


def test_readyz_is_unavailable_when_the_database_is_unreachable(make_app, tmp_path):
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'ledger.sqlite3'}"
    response = make_app(missing).test_client().get("/readyz")
    assert response.status_code == 503 and response.json["database"] == "unreachable"


def test_a_command_on_a_database_that_cannot_serve_says_what_to_do_without_a_traceback(make_app, empty_database_url, tmp_path):
    unmigrated = make_app(empty_database_url).test_cli_runner().invoke(args=["orders", "list", "--org", "C1"])
    assert unmigrated.exit_code == 1 and "run `ledger db upgrade` first" in unmigrated.output
    missing = make_app(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'ledger.sqlite3'}")
    unreachable = missing.test_cli_runner().invoke(args=["orders", "list", "--org", "C1"])
    assert unreachable.exit_code == 1 and "the database cannot be reached" in unreachable.output
    assert "Traceback" not in unmigrated.output + unreachable.output


def test_an_unknown_api_path_is_a_problem_document_not_a_page(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404 and response.json["code"] == "not_found"
    assert response.json["detail"] == "未找到"  # in the request's language, not Werkzeug's English sentence
    english = client.get("/api/v1/nothing-here", headers={"Accept-Language": "en"})
    assert english.json["detail"] == "Not found"


def test_a_wrong_method_is_a_405_problem(client):
    response = client.post("/healthz")
    assert response.status_code == 405 and response.json["code"] == "method_not_allowed"


def test_an_unknown_page_for_a_browser_is_an_html_404(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_the_openapi_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert "/healthz" in response.json["paths"]


def test_the_front_page_shows_the_org_tree_with_participants_and_points(client, street, volunteer_account, issue_points):
    issue_points(volunteer_account, 35)
    page = client.get("/").get_data(as_text=True)
    assert "城东街道" in page and "第一微网格" in page
    assert ">35<" in page


def test_the_front_page_of_an_empty_ledger_says_how_to_load_the_demo(client):
    assert "ledger demo" in client.get("/").get_data(as_text=True)
