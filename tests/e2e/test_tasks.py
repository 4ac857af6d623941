"""Tasks and the notification log through the edge, with real users, events and emails."""

from __future__ import annotations

import re

import pytest

from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")


def _create(client, tokens, **fields):
    answer = client.post("/api/tasks/", json={"title": "Write the report", **fields}, headers=tokens.auth)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _log(client, tokens, event_type: str = "") -> list[dict]:
    query = f"?event_type={event_type}" if event_type else ""
    answer = client.get(f"/api/logs/{query}", headers=tokens.auth)
    assert answer.status_code == 200
    return answer.get_json()["results"]


def test_the_replaced_systems_walkthrough_and_the_assignees_log_entry(stack, client, new_name) -> None:
    owner = stack.register_and_verify(new_name("owner"))
    assignee = stack.register_and_verify(new_name("assignee"))

    task = _create(client, owner, description="Quarterly numbers", priority="high")
    assert task["created_by"] == owner.user_id
    assert task["status"] == "pending"
    assert task["assigned_to"] is None

    listed = client.get("/api/tasks/", headers=owner.auth).get_json()
    assert [entry["id"] for entry in listed["results"]] == [task["id"]]
    assert listed["next_page_token"] == ""

    assigned = client.post(
        f"/api/tasks/{task['id']}/assign/", json={"user_id": assignee.user_id}, headers=owner.auth
    )
    assert assigned.status_code == 200
    assert assigned.get_json()["assigned_to"] == assignee.user_id

    entries = wait_for(lambda: _log(client, assignee, "taskmgr.task.assigned"))
    (entry,) = entries
    assert entry["recipient_user_id"] == assignee.user_id
    assert entry["channel"] == "email"
    assert str(task["id"]) in entry["subject"]
    wait_for(
        lambda: any("assigned to you" in message["Subject"] for message in stack.inbox.to(assignee.email))
    )

    # The assignee now sees the task and may change its status, nothing else.
    assert client.get(f"/api/tasks/{task['id']}/", headers=assignee.auth).status_code == 200
    done = client.patch(f"/api/tasks/{task['id']}/", json={"status": "done"}, headers=assignee.auth)
    assert done.get_json()["status"] == "done"
    retitled = client.patch(f"/api/tasks/{task['id']}/", json={"title": "Mine now"}, headers=assignee.auth)
    assert retitled.status_code == 403


def test_assigning_an_unknown_or_unverified_user_is_400(stack, client, user, new_name) -> None:
    task = _create(client, user)
    unknown = client.post(f"/api/tasks/{task['id']}/assign/", json={"user_id": 987654321}, headers=user.auth)
    assert unknown.status_code == 400
    assert "user_id" in unknown.get_json()["errors"]

    name = new_name("unverified")
    registered = client.post(
        "/api/users/register/",
        json={"username": name, "email": f"{name}@example.com", "password": "a long enough passphrase 1"},
    ).get_json()
    unverified = client.post(
        f"/api/tasks/{task['id']}/assign/", json={"user_id": registered["id"]}, headers=user.auth
    )
    assert unverified.status_code == 400
    assert "user_id" in unverified.get_json()["errors"]


def test_a_stale_if_match_is_412(client, user) -> None:
    task = client.post("/api/tasks/", json={"title": "Versioned"}, headers=user.auth)
    etag = task.headers["ETag"]
    task_id = task.get_json()["id"]

    first = client.patch(
        f"/api/tasks/{task_id}/", json={"priority": "low"}, headers={**user.auth, "If-Match": etag}
    )
    assert first.status_code == 200
    assert first.headers["ETag"] != etag

    stale = client.patch(
        f"/api/tasks/{task_id}/", json={"priority": "urgent"}, headers={**user.auth, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.get_json()["code"] == "VERSION_MISMATCH"
    assert client.get(f"/api/tasks/{task_id}/", headers=user.auth).get_json()["priority"] == "low"


def test_an_idempotency_key_repeats_the_first_answer(client, user) -> None:
    headers = {**user.auth, "Idempotency-Key": "create-report-1"}
    first = client.post("/api/tasks/", json={"title": "Once only"}, headers=headers)
    again = client.post("/api/tasks/", json={"title": "Once only"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    titles = [entry["title"] for entry in client.get("/api/tasks/", headers=user.auth).get_json()["results"]]
    assert titles.count("Once only") == 1

    reused = client.post("/api/tasks/", json={"title": "Something else"}, headers=headers)
    assert reused.status_code == 422
    assert reused.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_another_user_sees_nothing_of_my_tasks(stack, client, user, new_name) -> None:
    task = _create(client, user, title="Private")
    other = stack.register_and_verify(new_name("other"))
    for answer in (
        client.get(f"/api/tasks/{task['id']}/", headers=other.auth),
        client.patch(f"/api/tasks/{task['id']}/", json={"title": "Mine"}, headers=other.auth),
        client.delete(f"/api/tasks/{task['id']}/", headers=other.auth),
        client.post(f"/api/tasks/{task['id']}/assign/", json={"user_id": other.user_id}, headers=other.auth),
    ):
        assert answer.status_code == 404
        assert answer.get_json()["code"] == "TASK_NOT_FOUND"
    assert client.get("/api/tasks/", headers=other.auth).get_json()["results"] == []
    assert client.delete(f"/api/tasks/{task['id']}/", headers=user.auth).status_code == 204


def test_the_log_shows_only_my_entries_and_never_a_code(stack, client, new_name) -> None:
    me = stack.register_and_verify(new_name("me"))
    someone = stack.register_and_verify(new_name("someone"))
    assert client.post("/api/users/forgot_password/", json={"email": me.email}).status_code == 202
    reset_code = stack.inbox.code_for(me.email, "reset")

    def logged_reset() -> list[dict] | None:
        entries = _log(client, me)
        return (
            entries
            if any(e["event_type"] == "taskmgr.user.password_reset_requested" for e in entries)
            else None
        )

    mine = wait_for(logged_reset)
    assert {entry["recipient_user_id"] for entry in mine} == {me.user_id}
    assert {entry["recipient_user_id"] for entry in _log(client, someone)} <= {someone.user_id}
    page = client.get("/api/logs/?page_size=100", headers=me.auth).get_data(as_text=True)
    # Whole numbers only: a code's digits may occur inside a timestamp or a UUID.
    for code in (reset_code, stack.inbox.code_for(me.email)):  # the reset and verification codes
        assert not re.search(rf"\b{code}\b", page)
