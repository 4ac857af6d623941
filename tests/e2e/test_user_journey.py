"""The user journey of rest-contract.md, through HTTP, with the codes read from the emails."""

from __future__ import annotations

import jwt
import pytest

from tests.support.stack import PASSWORD

pytestmark = pytest.mark.xdist_group("e2e")

NEW_PASSWORD = "another long passphrase 7"
RESET_PASSWORD = "yet another passphrase 99"


def test_the_whole_user_journey(stack, client, new_name) -> None:
    username = new_name("journey")
    address = f"{username}@example.com"

    registered = client.post(
        "/api/users/register/", json={"username": username, "email": address, "password": PASSWORD}
    )
    assert registered.status_code == 201
    user = registered.get_json()
    assert user["username"] == username
    assert user["email"] == address
    assert user["email_verified"] is False
    assert user["is_staff"] is False
    assert isinstance(user["id"], int)

    code = stack.inbox.code_for(address)
    verified = client.post("/api/users/verify_otp/", json={"email": address, "otp_code": code})
    assert verified.status_code == 200
    assert verified.get_json()["detail"]

    login = client.post("/api/token/", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.get_json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {tokens['access']}"}

    profile = client.get("/api/users/profile/", headers=bearer)
    assert profile.status_code == 200
    assert profile.get_json()["email_verified"] is True

    patched = client.patch("/api/users/profile/", json={"first_name": "Ada"}, headers=bearer)
    assert patched.status_code == 200
    assert patched.get_json()["first_name"] == "Ada"
    assert client.get("/api/users/profile/", headers=bearer).get_json()["first_name"] == "Ada"

    stack.register_and_verify(new_name("other"))
    first_page = client.get("/api/users/list_users/?page_size=1", headers=bearer)
    assert first_page.status_code == 200
    page = first_page.get_json()
    assert len(page["results"]) == 1
    assert page["next_page_token"]
    listed = _all_users(client, bearer)
    assert listed[user["id"]]["email"] == address
    others = [entry for user_id, entry in listed.items() if user_id != user["id"]]
    assert others
    assert all(entry["email"] is None for entry in others)

    refreshed = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    rotated = refreshed.get_json()
    assert rotated["refresh"] != tokens["refresh"]
    reused = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert reused.status_code == 401
    assert reused.get_json()["code"] == "REFRESH_TOKEN_REUSED"
    # The reuse revoked the whole family, the rotated token with it.
    assert client.post("/api/token/refresh/", json={"refresh": rotated["refresh"]}).status_code == 401

    second = client.post("/api/token/", json={"username": username, "password": PASSWORD}).get_json()
    revoked = client.post("/api/token/revoke/", json={"refresh": second["refresh"]})
    assert revoked.status_code == 204
    assert client.post("/api/token/refresh/", json={"refresh": second["refresh"]}).status_code == 401

    third = client.post("/api/token/", json={"username": username, "password": PASSWORD}).get_json()
    changed = client.post(
        "/api/users/change_password/",
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {third['access']}"},
    )
    assert changed.status_code == 204
    assert client.post("/api/token/refresh/", json={"refresh": third["refresh"]}).status_code == 401
    assert (
        client.post("/api/token/", json={"username": username, "password": NEW_PASSWORD}).status_code == 200
    )

    fourth = client.post("/api/token/", json={"username": username, "password": NEW_PASSWORD}).get_json()
    assert client.post("/api/users/forgot_password/", json={"email": address}).status_code == 202
    reset_code = stack.inbox.code_for(address, "reset")
    reset = client.post(
        "/api/users/reset_password/",
        json={"email": address, "otp_code": reset_code, "new_password": RESET_PASSWORD},
    )
    assert reset.status_code == 204
    assert client.post("/api/token/refresh/", json={"refresh": fourth["refresh"]}).status_code == 401
    old = client.post("/api/token/", json={"username": username, "password": NEW_PASSWORD})
    assert old.status_code == 401
    final = client.post("/api/token/", json={"username": username, "password": RESET_PASSWORD})
    assert final.status_code == 200

    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    claims = _verified_claims(final.get_json()["access"], jwks.get_json())
    assert claims["user_id"] == user["id"]
    assert claims["sub"] == str(user["id"])
    assert claims["username"] == username


def test_forgot_and_resend_answer_the_same_for_an_unknown_address(client, new_name) -> None:
    known = client.post(
        "/api/users/register/",
        json={
            "username": new_name("known"),
            "email": f"{new_name('known')}@example.com",
            "password": PASSWORD,
        },
    ).get_json()["email"]
    unknown = f"{new_name('nobody')}@example.com"
    for path in ("/api/users/forgot_password/", "/api/users/resend_otp/"):
        answers = [client.post(path, json={"email": address}) for address in (known, unknown)]
        assert [answer.status_code for answer in answers] == [202, 202]
        assert answers[0].get_json() == answers[1].get_json()


def _all_users(client, bearer) -> dict[int, dict]:
    users, token = {}, ""
    while True:
        page = client.get(
            f"/api/users/list_users/?page_size=100&page_token={token}", headers=bearer
        ).get_json()
        users.update({entry["id"]: entry for entry in page["results"]})
        token = page["next_page_token"]
        if not token:
            return users


def _verified_claims(access: str, jwks: dict) -> dict:
    header = jwt.get_unverified_header(access)
    (key,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    return jwt.decode(access, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="taskmgr", issuer="taskmgr")
