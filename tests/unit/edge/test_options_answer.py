"""OPTIONS on a route: 204 No Content with Allow, no body and no media type (RFC 9110
sections 9.3.7 and 15.3.5). Flask's default was a 200 with an empty `text/html` body:
the one answer of the API labelled HTML. With CORS on, a preflight is still answered
(any 2xx passes the Fetch standard's CORS check)."""

from __future__ import annotations


def test_options_is_204_with_allow_and_no_body(client):
    response = client.options("/api/things/5/")

    assert response.status_code == 204
    assert set(response.allow) == {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"}
    assert response.data == b""
    assert "Content-Type" not in response.headers


def test_a_cors_preflight_is_still_allowed(make_client):
    client = make_client(cors_origins=["https://app.example"])

    response = client.options(
        "/api/things/5/", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"}
    )

    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
