"""The contract's field rules through the edge (real services, PostgreSQL, RabbitMQ): a
broken rule is a 400 naming the field as the client sent it, a missing REQUIRED field
too, and the values the document promises are the ones accepted."""

from __future__ import annotations

import pytest

from common.contract_rules import VISIBLE_MESSAGE

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


def test_a_name_of_invisible_characters_only_is_400(client, user) -> None:
    """Zero-width spaces, a BOM, a bidi override, ideographic spaces: nothing to see, so
    no title, project name, comment or given name (the contract's visible-character rule)."""
    invisible = "\u200b\u2060\ufeff\u202e\u3000"
    task = client.post("/api/tasks/", json={"title": "seen"}, headers=user.auth).get_json()
    comments = f"/api/tasks/{task['id']}/comments/"
    answers = {
        "title": client.post("/api/tasks/", json={"title": invisible}, headers=user.auth),
        "name": client.post("/api/projects/", json={"name": invisible}, headers=user.auth),
        "text": client.post(comments, json={"text": invisible}, headers=user.auth),
        "first_name": client.patch("/api/users/profile/", json={"first_name": invisible}, headers=user.auth),
    }
    for field, answer in answers.items():
        assert _field_errors(answer) == {field: [VISIBLE_MESSAGE]}, field
    renamed = client.patch(f"/api/tasks/{task['id']}/", json={"title": " \u200b"}, headers=user.auth)
    assert _field_errors(renamed) == {"title": [VISIBLE_MESSAGE]}
    assert client.get(f"/api/tasks/{task['id']}/", headers=user.auth).get_json()["title"] == "seen"
