"""gRPC statuses and edge refusals, as problem details."""

from __future__ import annotations

import pytest
from grpc import StatusCode

GENERIC = "The server could not complete the request."


def fail(client, **status):
    return client.post("/api/fail/", json=status)


@pytest.mark.parametrize(
    ("code", "http_status"),
    [
        (StatusCode.CANCELLED, 499),
        (StatusCode.UNKNOWN, 500),
        (StatusCode.INVALID_ARGUMENT, 400),
        (StatusCode.DEADLINE_EXCEEDED, 504),
        (StatusCode.NOT_FOUND, 404),
        (StatusCode.ALREADY_EXISTS, 409),
        (StatusCode.PERMISSION_DENIED, 403),
        (StatusCode.UNAUTHENTICATED, 401),
        (StatusCode.RESOURCE_EXHAUSTED, 429),
        (StatusCode.FAILED_PRECONDITION, 400),
        (StatusCode.ABORTED, 409),
        (StatusCode.OUT_OF_RANGE, 400),
        (StatusCode.UNIMPLEMENTED, 501),
        (StatusCode.INTERNAL, 500),
        (StatusCode.UNAVAILABLE, 503),
        (StatusCode.DATA_LOSS, 500),
    ],
)
def test_grpc_codes_map_to_http_statuses(client, code, http_status):
    response = fail(client, code=code.value[0], message="because")

    assert response.status_code == http_status
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == http_status
    assert response.json["type"] == "about:blank"
    assert response.json["request_id"] == response.headers["X-Request-Id"]


def test_client_facing_message_code_and_field_errors(client):
    response = fail(
        client,
        code=StatusCode.INVALID_ARGUMENT.value[0],
        message="The username is not valid.",
        reason="INVALID_USERNAME",
        violations={"username": "3-150 letters, digits and _.-"},
    )

    assert response.json == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The username is not valid.",
        "code": "INVALID_USERNAME",
        "errors": {"username": ["3-150 letters, digits and _.-"]},
        "request_id": response.headers["X-Request-Id"],
    }


@pytest.mark.parametrize("code", [StatusCode.INTERNAL, StatusCode.UNKNOWN, StatusCode.DATA_LOSS])
def test_internal_failures_say_nothing_internal(client, code):
    response = fail(client, code=code.value[0], message="db at 10.0.0.3 refused", reason="DB_DOWN")

    assert response.json["detail"] == GENERIC
    assert "10.0.0.3" not in response.get_data(as_text=True)
    assert response.json["code"] == "INTERNAL_SERVER_ERROR"


def test_version_mismatch_is_412(client):
    response = fail(
        client, code=StatusCode.FAILED_PRECONDITION.value[0], message="stale", reason="VERSION_MISMATCH"
    )

    assert response.status_code == 412
    assert response.json["code"] == "VERSION_MISMATCH"


def test_idempotency_key_reuse_is_422(client):
    response = fail(client, code=StatusCode.ALREADY_EXISTS.value[0], reason="IDEMPOTENCY_KEY_REUSED")

    assert response.status_code == 422


def test_unauthenticated_asks_for_a_bearer_token(client):
    response = fail(client, code=StatusCode.UNAUTHENTICATED.value[0], reason="INVALID_TOKEN")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("seconds", "header"), [(1.2, "2"), (30, "30"), (0.1, "1")])
def test_retry_info_becomes_retry_after_in_whole_seconds(client, seconds, header):
    response = fail(
        client,
        code=StatusCode.RESOURCE_EXHAUSTED.value[0],
        reason="TOO_MANY_ATTEMPTS",
        retry_seconds=seconds,
    )

    assert response.status_code == 429
    assert response.headers["Retry-After"] == header


def test_unreachable_backend_is_503_without_its_address(make_client, backend, contract, issuer):
    import grpc

    from common.settings import Settings
    from edge_api.app import create_app
    from edge_api.authn import EdgeAuthenticator

    dead = grpc.insecure_channel("127.0.0.1:1")
    authenticator = EdgeAuthenticator(issuer.verifier())
    app = create_app(Settings(), channels={"edgetest": dead}, contract=contract, authenticator=authenticator)

    response = app.test_client().get("/api/things/1/", headers={"Authorization": f"Bearer {issuer.token(1)}"})

    assert response.status_code == 503
    assert "127.0.0.1" not in response.get_data(as_text=True)
    dead.close()


def test_malformed_json_is_400(client):
    response = client.post("/api/things/", data="{", content_type="application/json")

    assert response.status_code == 400
    assert response.json["code"] == "MALFORMED_JSON"


def test_a_json_array_body_is_400(client):
    response = client.post("/api/things/", json=[1, 2])

    assert response.status_code == 400
    assert response.json["code"] == "MALFORMED_JSON"


def test_non_json_body_is_415(client):
    response = client.post("/api/things/", data="name=x", content_type="text/plain")

    assert response.status_code == 415
    assert response.content_type == "application/problem+json"


def test_body_over_64_kib_is_413(client, servicer):
    calls = len(servicer.requests)
    body = '{"name": "' + "x" * 65536 + '"}'

    response = client.post("/api/things/", data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert len(servicer.requests) == calls


def test_unknown_path_is_a_404_problem(client):
    response = client.get("/api/nothing/")

    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"
    assert response.headers["X-Request-Id"] == response.json["request_id"]


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.put("/api/things/5/")

    assert response.status_code == 405
    assert response.content_type == "application/problem+json"
    assert {"GET", "PATCH", "DELETE"} <= set(response.headers["Allow"].split(", "))


def test_rate_limit_from_the_method_option(client):
    statuses = [client.post("/api/things/", json={"name": "x"}).status_code for _ in range(4)]

    assert statuses == [201, 201, 201, 429]
    response = client.post("/api/things", json={"name": "x"})  # the same limit without slash
    assert response.status_code == 429
    assert response.json["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Retry-After" not in client.get("/api/things/5/").headers


def test_rate_limit_of_a_route_with_a_token_counts_the_user_not_the_address(client):
    for _ in range(3):
        client.post("/api/things/", json={"name": "x"})

    other = client.post("/api/things/", json={"name": "x"}, environ_base={"REMOTE_ADDR": "10.1.1.1"})

    assert other.status_code == 429  # the same user from another address (test_limit_settings)


def test_unexpected_edge_error_is_a_generic_500(client, monkeypatch):
    from edge_api import transcoder

    def broken(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(transcoder, "build_response", broken)

    response = client.get("/api/things/5/")

    assert response.status_code == 500
    assert response.json["detail"] == GENERIC
    assert "secret" not in response.get_data(as_text=True)
