"""What the edge answers around its routes: the request head's rules (edge_api.request_head),
the problem+json net for every other answer (edge_api.errors), and Vary with CORS."""

from __future__ import annotations

import pytest
from flask import redirect

from edge_api.request_head import MAX_HEADER_BYTES, MAX_URI_BYTES, is_canonical

PROBLEM = "application/problem+json"


def _problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.content_type == PROBLEM
    body = answer.get_json()
    assert body["status"] == status and body["request_id"]
    return body


@pytest.mark.parametrize(
    ("path", "raw", "canonical"),
    [
        ("/", None, True),
        ("/api/things/5/", None, True),
        ("/api/things/5", None, True),
        ("/api/things/a b/", "/api/things/a%20b/", True),
        ("/api/things/..5/", None, True),  # a segment that only starts with dots
        ("/api//things/", None, False),
        ("//api/things/", None, False),
        ("/api/things//", None, False),
        ("/api/things/./", None, False),
        ("/api/things/../", "/api/things/%2E%2E/", False),
        ("/api/things/..", None, False),
        ("/api/things/5/rename/", "/api/things/5%2Frename/", False),
        ("/api/things/5/rename/", "/api/things/5%2frename/?x=1", False),
        ("/api/things/5/", "/api/things/5/?next=%2F", True),  # the query is not the path
        ("api/things/", None, False),
    ],
)
def test_canonical_paths(path: str, raw: str | None, canonical: bool) -> None:
    assert is_canonical(path, raw) is canonical


@pytest.mark.parametrize(
    "path", ["/api//things/5/", "/api/things/5/%2E%2E/", "/api/things/5%2Frename/", "/api/things/./5/"]
)
def test_a_non_canonical_path_is_404_and_reaches_no_backend(client, servicer, path: str) -> None:
    servicer.requests.clear()
    _problem(client.get(path), 404)
    _problem(client.post(path, json={}), 404)
    assert not servicer.requests


def test_routing_never_redirects(client) -> None:
    # Werkzeug answered 308 (an HTML page) for these before.
    for path in ("/healthz/", "/api/things/5", "/swagger", "/swagger.json/"):
        answer = client.get(path)
        assert not 300 <= answer.status_code < 400, (path, answer.status_code)
        assert "Location" not in answer.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/things/5/"),  # served as GET before: Werkzeug upper-cases the method
        ("Get", "/healthz"),
        ("FOO", "/api/things/5/"),  # 405 before, with an Allow that could not help
        ("get", "/api/nowhere/"),  # 404 before
        ("FOO", "/"),
    ],
)
def test_an_unknown_method_is_501_on_any_path(client, servicer, method: str, path: str) -> None:
    """RFC 9110 sections 9.1 (method names are case-sensitive) and 15.6.2."""
    servicer.requests.clear()
    _problem(client.open(path, environ_overrides={"REQUEST_METHOD": method}), 501)
    assert not servicer.requests


@pytest.mark.parametrize("method", ["PUT", "TRACE", "CONNECT"])
def test_a_known_method_the_path_does_not_offer_is_405_with_allow(client, method: str) -> None:
    answer = client.open("/api/things/5/", environ_overrides={"REQUEST_METHOD": method})
    _problem(answer, 405)
    assert "GET" in answer.headers["Allow"] and method not in answer.headers["Allow"]


def test_routing_errors_say_what_the_api_means_not_werkzeugs_browser_advice(client) -> None:
    missing = _problem(client.get("/api/nowhere/"), 404)
    wrong_method = _problem(client.open("/api/things/5/", environ_overrides={"REQUEST_METHOD": "PUT"}), 405)
    for body in (missing, wrong_method):
        assert "manually" not in body["detail"] and "spelling" not in body["detail"]
    assert "/swagger.json" in missing["detail"] and "Allow" in wrong_method["detail"]


def test_uri_and_header_sizes(client) -> None:
    assert client.get("/healthz?" + "a" * (MAX_URI_BYTES - 100)).status_code == 200
    _problem(client.get("/healthz?" + "a" * MAX_URI_BYTES), 414)
    _problem(client.get("/api/things/" + "5" * MAX_URI_BYTES + "/"), 414)
    assert client.get("/healthz", headers={"X-Big": "a" * (MAX_HEADER_BYTES // 2)}).status_code == 200
    _problem(client.get("/healthz", headers={"X-Big": "a" * MAX_HEADER_BYTES}), 431)
    many = {f"X-Field-{n}": "b" * 500 for n in range(40)}
    _problem(client.get("/healthz", headers=many), 431)


def test_any_other_redirect_or_error_leaves_as_a_problem(make_client) -> None:
    client = make_client()
    app = client.application
    app.add_url_rule("/html-error", "html_error", lambda: ("<h1>I am a teapot</h1>", 418))
    app.add_url_rule("/text-error", "text_error", lambda: ("nope", 503, {"Retry-After": "7"}))
    app.add_url_rule("/moved", "moved", lambda: redirect("/healthz", 302))

    _problem(client.get("/html-error"), 418)
    unavailable = client.get("/text-error")
    _problem(unavailable, 503)
    assert unavailable.headers["Retry-After"] == "7"
    moved = client.get("/moved")
    assert "/healthz" in _problem(moved, 302)["detail"]
    assert moved.headers["Location"] == "/healthz"
    assert moved.headers["X-Request-Id"]


ORIGIN, OTHER = "https://app.example", "https://evil.example"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/things/5/", {"Origin": ORIGIN}),  # allowed origin, actual request
        ("GET", "/api/things/5/", {"Origin": OTHER}),  # refused origin
        ("GET", "/api/things/5/", {}),  # no Origin: a cache must not give this to a browser
        ("GET", "/api/things/0/", {"Origin": ORIGIN}),  # an error answer
        ("GET", "/nothing/", {"Origin": ORIGIN}),  # 404
        ("GET", "/healthz", {"Origin": OTHER}),
        ("OPTIONS", "/api/things/5/", {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"}),
        ("OPTIONS", "/api/things/5/", {"Origin": OTHER, "Access-Control-Request-Method": "GET"}),
    ],
)
def test_with_cors_every_answer_varies_on_origin(make_client, method: str, path: str, headers: dict) -> None:
    client = make_client(cors_origins=[ORIGIN])

    answer = client.open(path, method=method, headers=headers)

    assert "origin" in {value.lower() for value in answer.vary}, (answer.status_code, answer.headers)
    if method == "OPTIONS":
        assert {"access-control-request-method", "access-control-request-headers"} <= {
            value.lower() for value in answer.vary
        }


def test_without_cors_no_vary_on_origin(client) -> None:
    assert "Origin" not in client.get("/api/things/5/", headers={"Origin": ORIGIN}).vary
