"""The contract's field rules through the edge (real services, PostgreSQL, RabbitMQ): a
broken rule is a 400 naming the field as the client sent it, a missing REQUIRED field
too, and the values the document promises are the ones accepted."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def _field_errors(answer, status: int = 400) -> dict:
    assert answer.status_code == status, answer.get_json()
    assert answer.content_type == "application/problem+json"
    return answer.get_json()["errors"]


def test_a_task_field_is_named_from_the_body_not_the_request(client, user) -> None:
    """The service says `task.title`; the client sent `title` in the body."""
    answer = client.post("/api/tasks/", json={"title": "x" * 201, "priority": "high"}, headers=user.auth)
    assert set(_field_errors(answer)) == {"title"}
    answer = client.post("/api/tasks/", json={"description": "no title"}, headers=user.auth)
    assert _field_errors(answer) == {"title": ["This field is required."]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/token/revoke/", None, "refresh"),  # was a silent 204
        ("/api/token/refresh/", {}, "refresh"),
        ("/api/users/verify_otp/", {"email": "a@example.com", "otp_code": "12 456"}, "otp_code"),
        ("/api/users/resend_otp/", {"email": "a@@example.com"}, "email"),
        ("/api/users/forgot_password/", {}, "email"),
    ],
)
def test_public_methods_refuse_broken_rules(client, path, body, field) -> None:
    answer = client.post(path, json=body) if body is not None else client.post(path)
    assert field in _field_errors(answer)


def test_limits_on_the_caller_s_own_calls(client, user) -> None:
    long_name = client.patch("/api/users/profile/", json={"first_name": "x" * 151}, headers=user.auth)
    assert set(_field_errors(long_name)) == {"first_name"}
    two_lines = client.patch("/api/users/profile/", json={"last_name": "a\nb"}, headers=user.auth)
    assert set(_field_errors(two_lines)) == {"last_name"}
    assert set(_field_errors(client.get("/api/tasks/?q=" + "x" * 201, headers=user.auth))) == {"q"}
    assert set(_field_errors(client.get("/api/tasks/?assigned_to=someone", headers=user.auth))) == {
        "assigned_to"
    }
    assert set(_field_errors(client.get("/api/tasks/?ordering=title", headers=user.auth))) == {"ordering"}
    assert set(_field_errors(client.get("/api/tasks/?status=unspecified", headers=user.auth))) == {"status"}
    typed = client.get(
        "/api/tasks/?status=done&due_before=2030-01-01T00:00:00Z&ordering=-priority", headers=user.auth
    )
    assert typed.status_code == 200, typed.get_json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/0/"),
        ("DELETE", "/api/tasks/0/"),
        ("GET", "/api/tasks/0/comments/"),
        ("GET", "/api/projects/0/labels/"),
        ("DELETE", "/api/projects/1/members/0/"),
        ("POST", "/api/users/0/deactivate/"),
    ],
)
def test_a_zero_id_in_the_path_is_too_small_not_missing(client, user, method, path) -> None:
    """A 0 in the path was "This field is required."; it is there, and too small."""
    errors = _field_errors(client.open(path, method=method, headers=user.auth))
    assert list(errors.values()) == [["Must be greater than 0."]], errors
