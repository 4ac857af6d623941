"""Every error path of the user endpoints, with its HTTP status and `code`, through the edge."""

from __future__ import annotations

import pytest

from tests.support.stack import PASSWORD

pytestmark = pytest.mark.xdist_group("e2e")


def _register(client, username: str, email: str, password: str = PASSWORD):
    return client.post(
        "/api/users/register/", json={"username": username, "email": email, "password": password}
    )


def _assert_problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.get_json()
    assert answer.content_type == "application/problem+json"
    body = answer.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == answer.headers["X-Request-Id"]
    return body


def test_a_taken_username_or_email_is_409(client, user, new_name) -> None:
    _assert_problem(_register(client, user.username, f"{new_name('x')}@example.com"), 409, "USERNAME_TAKEN")
    _assert_problem(_register(client, new_name("x"), user.email), 409, "EMAIL_TAKEN")


@pytest.mark.parametrize(
    ("username", "email", "password", "field"),
    [
        ("ok_name", "ok@example.com", "short", "password"),
        ("ok_name", "ok@example.com", "password", "password"),
        ("no spaces allowed", "ok@example.com", PASSWORD, "username"),
        ("ab", "ok@example.com", PASSWORD, "username"),
        ("ok_name", "not-an-address", PASSWORD, "email"),
    ],
)
def test_bad_registration_fields_are_400_with_errors(
    client, new_name, username, email, password, field
) -> None:
    unique = new_name("bad")
    username = username if username != "ok_name" else unique
    email = email.replace("ok@", f"{unique}@")
    body = _assert_problem(_register(client, username, email, password), 400, "INVALID_ARGUMENT")
    assert set(body["errors"]) == {field}
    assert all(isinstance(message, str) for message in body["errors"][field])


def test_a_wrong_code_is_400_invalid_otp(stack, client, new_name) -> None:
    email = f"{new_name('otp')}@example.com"
    assert _register(client, new_name("otp"), email).status_code == 201
    right = stack.inbox.code_for(email)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    _assert_problem(
        client.post("/api/users/verify_otp/", json={"email": email, "otp_code": wrong}), 400, "INVALID_OTP"
    )
    unknown = {"email": f"{new_name('nobody')}@example.com", "otp_code": right}
    _assert_problem(client.post("/api/users/verify_otp/", json=unknown), 400, "INVALID_OTP")


def test_login_errors(stack, client, user, new_name) -> None:
    wrong = {"username": user.username, "password": "not the password at all"}
    _assert_problem(client.post("/api/token/", json=wrong), 401, "INVALID_CREDENTIALS")
    nobody = {"username": new_name("nobody"), "password": PASSWORD}
    _assert_problem(client.post("/api/token/", json=nobody), 401, "INVALID_CREDENTIALS")

    unverified = new_name("unverified")
    assert _register(client, unverified, f"{unverified}@example.com").status_code == 201
    answer = client.post("/api/token/", json={"username": unverified, "password": PASSWORD})
    _assert_problem(answer, 403, "EMAIL_NOT_VERIFIED")


def test_repeated_failed_logins_back_off_with_retry_after(stack, user) -> None:
    client = stack.client()  # an address of its own: the backoff counts per client IP too
    wrong = {"username": user.username, "password": "not the password at all"}
    statuses = [client.post("/api/token/", json=wrong).status_code for _ in range(5)]
    assert statuses == [401] * 5
    answer = client.post("/api/token/", json={"username": user.username, "password": PASSWORD})
    _assert_problem(answer, 429, "TOO_MANY_LOGIN_ATTEMPTS")
    assert 0 < int(answer.headers["Retry-After"]) <= 30


def test_bearer_endpoints_need_a_valid_token(client, user) -> None:
    missing = client.get("/api/users/profile/")
    _assert_problem(missing, 401, "TOKEN_MISSING")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = {"Authorization": f"Bearer {user.access[:-4]}AAAA"}
    _assert_problem(client.get("/api/users/profile/", headers=forged), 401, "TOKEN_INVALID")
    _assert_problem(client.get("/api/tasks/", headers=forged), 401, "TOKEN_INVALID")
    _assert_problem(client.get("/api/logs/", headers=forged), 401, "TOKEN_INVALID")


def test_change_password_with_a_wrong_old_password_is_400(client, user) -> None:
    answer = client.post(
        "/api/users/change_password/",
        json={"old_password": "not the password at all", "new_password": "a fine new passphrase 1"},
        headers=user.auth,
    )
    body = _assert_problem(answer, 400, "WRONG_PASSWORD")
    assert "old_password" in body["errors"]
