"""Instant revocation through REST (the whole stack, RabbitMQ): logout and a staff
deactivation end the access tokens at once (401 TOKEN_REVOKED at the edge and behind
it); deactivate and reactivate are staff only, never oneself, and in Swagger."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from common.db import Database
from tests.support.stack import PASSWORD
from user_svc.models import User

pytestmark = pytest.mark.xdist_group("e2e")


@pytest.fixture
def staff(stack, new_name):  # noqa: ANN001, ANN201
    tokens = stack.register_and_verify(new_name("staff"))
    database = Database(stack.settings.user_svc_database_url, pool_size=1)
    with database.transaction() as session:
        session.execute(update(User).where(User.id == tokens.user_id).values(is_staff=True))
    database.dispose()
    return tokens, _login(stack.client(), tokens.username)


def _login(client, username: str) -> dict[str, str]:  # noqa: ANN001
    answer = client.post("/api/token/", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access']}"}


def refused_within(client, path: str, headers: dict[str, str], seconds: float = 1.0) -> dict:  # noqa: ANN001
    """Polls `path` until it is 401; its problem document (fails after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        answer = client.get(path, headers=headers)
        if answer.status_code == 401:
            assert answer.content_type == "application/problem+json"
            return answer.get_json()
        assert answer.status_code == 200
        time.sleep(0.01)
    raise AssertionError(f"{path} still answered 200 after {seconds} s")


def test_logout_ends_the_access_token_through_rest(client, user) -> None:  # noqa: ANN001
    assert client.get("/api/tasks/", headers=user.auth).status_code == 200
    assert client.post("/api/token/revoke/", json={"refresh": user.refresh}).status_code == 204
    for path in ("/api/tasks/", "/api/users/profile/"):
        assert refused_within(client, path, user.auth)["code"] == "TOKEN_REVOKED"


def test_staff_deactivate_and_reactivate_a_user(client, user, staff) -> None:  # noqa: ANN001
    _, staff_auth = staff
    assert client.get("/api/tasks/", headers=user.auth).status_code == 200
    done = client.post(f"/api/users/{user.user_id}/deactivate/", headers=staff_auth)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["id"] == user.user_id
    assert refused_within(client, "/api/tasks/", user.auth)["code"] == "TOKEN_REVOKED"
    login = client.post("/api/token/", json={"username": user.username, "password": PASSWORD})
    assert (login.status_code, login.get_json()["code"]) == (403, "ACCOUNT_DEACTIVATED")
    assert client.post("/api/token/refresh/", json={"refresh": user.refresh}).status_code == 401
    again = client.post(f"/api/users/{user.user_id}/reactivate/", headers=staff_auth, json={})
    assert again.status_code == 200
    fresh = _login(client, user.username)
    assert client.get("/api/tasks/", headers=fresh).status_code == 200
    assert client.get("/api/tasks/", headers=user.auth).status_code == 401  # ended stays ended


def test_only_staff_and_never_themselves(stack, client, user, staff, new_name) -> None:  # noqa: ANN001
    _, staff_auth = staff
    other = stack.register_and_verify(new_name("other"))
    staff_id = client.get("/api/users/profile/", headers=staff_auth).get_json()["id"]
    for action in ("deactivate", "reactivate"):
        by_user = client.post(f"/api/users/{other.user_id}/{action}/", headers=user.auth)
        assert (by_user.status_code, by_user.get_json()["code"]) == (403, "STAFF_ONLY")
        themself = client.post(f"/api/users/{staff_id}/{action}/", headers=staff_auth)
        assert (themself.status_code, themself.get_json()["code"]) == (400, "CANNOT_DEACTIVATE_SELF")
        nobody = client.post(f"/api/users/{10**12}/{action}/", headers=staff_auth)
        assert nobody.status_code == 404
        anonymous = client.post(f"/api/users/{other.user_id}/{action}/")
        assert anonymous.status_code == 401
        bad_id = client.post(f"/api/users/abc/{action}/", headers=staff_auth)
        assert bad_id.status_code in (400, 404) and bad_id.content_type == "application/problem+json"
    assert client.get("/api/tasks/", headers=other.auth).status_code == 200


def test_swagger_shows_deactivate_and_reactivate(client) -> None:  # noqa: ANN001
    paths = client.get("/swagger.json").get_json()["paths"]
    for action in ("deactivate", "reactivate"):
        operation = paths[f"/api/users/{{id}}/{action}/"]["post"]
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
