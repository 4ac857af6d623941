"""Every answer under /api/ is `Cache-Control: no-store` and every answer
`X-Content-Type-Options: nosniff`.

The API's answers are one user's data or credentials: the token endpoints' access and
refresh tokens must not be stored by any cache (RFC 6749 section 5.1, "no-store"), nor
profiles, tasks or problems (OWASP ASVS v4 8.2.1). Before, no answer said anything, so a
browser's or proxy's heuristics decided. nosniff keeps browsers from reading a JSON or
problem body as HTML or script (Fetch standard, section 3.5)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/things/5/", {}, 200),  # a representation, with an ETag
        ("post", "/api/things/5/rename/", {"json": {"name": "n"}}, 200),  # public, as the token routes
        ("get", "/api/things/abc/", {}, 400),  # a problem
        ("get", "/api/nothing/", {}, 404),  # no route at all
        ("put", "/api/things/5/", {"json": {}}, 405),
    ],
)
def test_api_answers_are_never_stored(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)

    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_304_is_never_stored_either(client):
    etag = client.get("/api/things/5/").headers["ETag"]

    response = client.get("/api/things/5/", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unauthenticated_answer_is_never_stored(client):
    response = client.get("/api/things/5/", headers={"Authorization": ""})

    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"


def test_the_documents_may_be_cached_and_are_not_sniffed(client):
    response = client.get("/swagger.json")

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
