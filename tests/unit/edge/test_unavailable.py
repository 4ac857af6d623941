"""A backend that is away is 503 with Retry-After, with or without its RetryInfo."""

from __future__ import annotations

from grpc import StatusCode


def test_unavailable_without_retry_info_still_says_when_to_retry(client):
    # A backend that is down cannot send RetryInfo: the transport answers for it.
    response = client.post("/api/fail/", json={"code": StatusCode.UNAVAILABLE.value[0], "message": "gone"})

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["detail"] == "The service is temporarily unavailable; try again later."


def test_retry_info_of_an_unavailable_backend_wins(client):
    response = client.post(
        "/api/fail/", json={"code": StatusCode.UNAVAILABLE.value[0], "message": "x", "retry_seconds": 7}
    )

    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")


def test_other_server_errors_carry_no_retry_after(client):
    for code in (StatusCode.INTERNAL, StatusCode.UNKNOWN, StatusCode.DEADLINE_EXCEEDED):
        response = client.post("/api/fail/", json={"code": code.value[0], "message": "x"})
        assert "Retry-After" not in response.headers, code
