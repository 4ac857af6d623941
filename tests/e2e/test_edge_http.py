"""What the edge itself answers, before or around the backends: sizes, types, bodies, request ids."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("e2e")

LIMIT = 64 * 1024


def _problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.content_type == "application/problem+json"
    body = answer.get_json()
    assert body["status"] == status
    assert "Traceback" not in answer.get_data(as_text=True)
    return body


def test_a_body_over_64_kib_is_413(client, user) -> None:
    body = '{"title": "' + "x" * LIMIT + '"}'
    answer = client.post("/api/tasks/", data=body, content_type="application/json", headers=user.auth)
    _problem(answer, 413)


def test_a_body_just_under_the_limit_reaches_the_service(client, user) -> None:
    # Past the edge; task_svc refuses the over-long title itself, with a field error.
    body = '{"title": "' + "x" * (LIMIT - 100) + '"}'
    answer = client.post("/api/tasks/", data=body, content_type="application/json", headers=user.auth)
    assert "title" in _problem(answer, 400)["errors"]


def test_a_body_that_is_not_json_is_415(client, user) -> None:
    answer = client.post(
        "/api/tasks/", data="title=x", content_type="application/x-www-form-urlencoded", headers=user.auth
    )
    _problem(answer, 415)


def test_malformed_json_is_400(client, user) -> None:
    answer = client.post("/api/tasks/", data='{"title": ', content_type="application/json", headers=user.auth)
    _problem(answer, 400)


def test_unknown_body_fields_are_400(client, user) -> None:
    answer = client.post("/api/tasks/", json={"title": "t", "owner": 1}, headers=user.auth)
    _problem(answer, 400)
    answer = client.post("/api/token/", json={"username": user.username, "password": "x", "remember": True})
    _problem(answer, 400)


def test_unknown_path_and_wrong_method(client, user) -> None:
    _problem(client.get("/api/nothing-here/", headers=user.auth), 404)
    _problem(client.put("/api/users/profile/", json={}, headers=user.auth), 405)


def test_paths_work_with_and_without_the_trailing_slash(client, user) -> None:
    assert client.get("/api/users/profile", headers=user.auth).status_code == 200
    assert client.get("/api/users/profile/", headers=user.auth).status_code == 200


def test_the_request_id_is_returned_and_one_is_made_when_absent(client, user) -> None:
    given = client.get("/api/users/profile/", headers={**user.auth, "X-Request-Id": "e2e-trace.42"})
    assert given.headers["X-Request-Id"] == "e2e-trace.42"

    failed = client.get("/api/tasks/999999999/", headers={**user.auth, "X-Request-Id": "e2e-trace.43"})
    assert failed.headers["X-Request-Id"] == "e2e-trace.43"
    assert _problem(failed, 404)["request_id"] == "e2e-trace.43"

    made = client.get("/api/users/profile/", headers=user.auth).headers["X-Request-Id"]
    insane = client.get("/api/users/profile/", headers={**user.auth, "X-Request-Id": "a b\tc"})
    assert made
    assert insane.headers["X-Request-Id"] not in ("", "a b\tc")
