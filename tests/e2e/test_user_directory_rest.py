"""The user directory through REST (GET /api/users/list_users/): anyone but staff sees
the verified, active accounts only, and no email but their own (null, the field kept);
staff see every account with its email."""

from __future__ import annotations

import pytest

from tests.e2e.test_revocation_rest import staff  # noqa: F401 (a fixture)
from tests.support.stack import PASSWORD

pytestmark = pytest.mark.xdist_group("e2e")


def listed(client, auth: dict[str, str], q: str = "") -> list[dict]:  # noqa: ANN001
    found, token = [], ""
    while True:
        answer = client.get(f"/api/users/list_users/?q={q}&page_size=100&page_token={token}", headers=auth)
        assert answer.status_code == 200, answer.get_json()
        found += answer.get_json()["results"]
        if not (token := answer.get_json()["next_page_token"]):
            return found


def test_the_directory_hides_unverified_and_deactivated_accounts_from_all_but_staff(
    stack, client, user, staff, new_name  # noqa: ANN001, F811
) -> None:
    _, staff_auth = staff
    prefix = new_name("dir")
    registered = client.post("/api/users/register/", json={
        "username": f"{prefix}a", "email": f"{prefix}a@example.com", "password": PASSWORD,
    })
    assert registered.status_code == 201  # and never verified
    verified = stack.register_and_verify(f"{prefix}b")
    deactivated = stack.register_and_verify(f"{prefix}c")
    done = client.post(f"/api/users/{deactivated.user_id}/deactivate/", headers=staff_auth)
    assert done.status_code == 200, done.get_json()

    seen = listed(client, user.auth, prefix.upper())
    assert [entry["username"] for entry in seen] == [verified.username]
    assert seen[0]["email"] is None and seen[0]["email_verified"] is True
    everyone = {entry["username"]: entry for entry in listed(client, user.auth)}
    assert f"{prefix}a" not in everyone and deactivated.username not in everyone
    assert everyone[user.username]["email"] == user.email
    assert all(entry["email"] is None for name, entry in everyone.items() if name != user.username)

    as_staff = listed(client, staff_auth, prefix)
    assert [entry["username"] for entry in as_staff] == [f"{prefix}{letter}" for letter in "abc"]
    assert [entry["email"] for entry in as_staff] == [f"{prefix}{letter}@example.com" for letter in "abc"]


def test_an_unconfirmed_or_deactivated_account_is_to_others_a_user_nobody_has(
    stack, client, user, staff, new_name  # noqa: ANN001, F811
) -> None:
    """Adding it to a project or assigning it a task answers as for an unknown name or id
    (nothing tells a member that a sign-up exists)."""
    _, staff_auth = staff
    prefix = new_name("hid")
    squatter = client.post("/api/users/register/", json={
        "username": f"{prefix}sq", "email": f"{prefix}sq@example.com", "password": PASSWORD,
    })
    assert squatter.status_code == 201  # and never verified
    bob = stack.register_and_verify(f"{prefix}bob")
    done = client.post(f"/api/users/{bob.user_id}/deactivate/", headers=staff_auth)
    assert done.status_code == 200 and done.get_json()["is_active"] is False
    project = client.post("/api/projects/", json={"name": "p"}, headers=user.auth)
    assert project.status_code == 201, project.get_json()
    members = f"/api/projects/{project.get_json()['id']}/members/"

    def answer(method, path: str, body: dict) -> tuple:  # noqa: ANN001
        got = method(path, json=body, headers=user.auth)
        payload = got.get_json()
        return got.status_code, payload.get("code"), payload.get("errors")

    unknown_name = answer(client.post, members, {"username": f"{prefix}nobody"})
    unknown_id = answer(client.post, members, {"user_id": 2**53})
    assert unknown_name[:2] == (400, "MEMBER_INVALID"), unknown_name
    for hidden_name, hidden_id in [(f"{prefix}sq", squatter.get_json()["id"]), (bob.username, bob.user_id)]:
        assert answer(client.post, members, {"username": hidden_name}) == unknown_name
        assert answer(client.post, members, {"user_id": hidden_id}) == unknown_id
        assigned = answer(client.post, "/api/tasks/", {"title": "t", "assigned_to": hidden_id})
        assert assigned == (400, "ASSIGNEE_INVALID", {"assigned_to": ["No user with this id."]})
