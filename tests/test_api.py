"""The HTTP edge: health probes, the front page, and one error format for everything."""

from __future__ import annotations

import socket


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


def test_serving_on_a_port_in_use_says_so_without_a_traceback(runner):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(args=["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    assert "Serving" not in result.output and "Traceback" not in result.output


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


def test_every_api_route_refuses_a_query_parameter_it_does_not_take_naming_it(client):
    document = client.get("/api/v1/openapi.json").json
    checked = 0
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path
        for parameter in operations.get("parameters", []):
            schema = parameter["schema"]
            value = schema["enum"][0] if "enum" in schema else schema.get("minimum", 1)
            url = url.replace("{" + parameter["name"] + "}", str(value))
        for method in operations.keys() - {"parameters"}:
            response = client.open(url, method=method.upper(), query_string={"perod": "2025"})
            assert response.status_code == 422, (method, path, response.json)
            assert response.json["errors"] == {"query.perod": ["Unknown field."]}, (method, path)
            assert "'perod'" in response.json["detail"]
            checked += 1
    assert checked > 80


def test_an_unknown_query_parameter_is_refused_with_those_the_endpoint_takes(client):
    ranking = client.get("/api/v1/orgs/1/rankings", query_string={"perod": "2025", "page": "2"})
    assert ranking.status_code == 422 and list(ranking.json["errors"]) == ["query.perod"]
    assert ranking.json["detail"] == "unknown query parameter 'perod'; this endpoint takes: category, page, page_size, period, public"
    balance = client.get("/api/v1/participants/1/balance", query_string={"year": "2025"})
    assert balance.json["detail"] == "unknown query parameter 'year'; this endpoint takes no query parameters"
    # Parameters the endpoint takes pass this check (org 1 does not exist here).
    assert client.get("/api/v1/orgs/1/rankings", query_string={"period": "2025", "page": "2"}).status_code == 404
