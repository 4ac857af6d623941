"""Working together through the edge, with real users, RabbitMQ and emails: two people
in a project comment, mention and watch a task; its activity lists every change; each
person is emailed once per event, the actor never, someone who cannot see the task never."""

from __future__ import annotations

import time

import pytest

from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")


def _about(stack, address: str, task_id: int) -> list[str]:  # noqa: ANN001
    """The subjects of the emails `address` received about task `task_id`."""
    return [
        mail["Subject"] for mail in stack.inbox.to(address) if f"task #{task_id}" in mail["Subject"].lower()
    ]


def test_comment_mention_activity_watch_one_email_each(stack, client, new_name) -> None:
    alice = stack.register_and_verify(new_name("alice"))
    bob = stack.register_and_verify(new_name("bob"))
    carol = stack.register_and_verify(new_name("carol"))
    dave = stack.register_and_verify(new_name("dave"))  # not in the project

    project = client.post("/api/projects/", json={"name": "Launch"}, headers=alice.auth).get_json()
    members = f"/api/projects/{project['id']}/members/"
    for who, role in ((bob, "member"), (carol, "viewer")):
        assert (
            client.post(
                members, json={"username": who.username, "role": role}, headers=alice.auth
            ).status_code
            == 201
        )
    task = client.post(
        "/api/tasks/",
        json={"title": "Pick fonts", "project_id": project["id"], "assigned_to": bob.user_id},
        headers=alice.auth,
    ).get_json()
    base = f"/api/tasks/{task['id']}"
    wait_for(lambda: _about(stack, bob.email, task["id"]))  # "assigned to you"

    # Carol, a viewer, watches it; Alice (creator) and Bob (assignee) watch already.
    watch = client.post(f"{base}/watch/", json={}, headers=carol.auth)
    assert watch.status_code == 200 and watch.get_json() == {"task_id": task["id"], "watching": True}
    assert client.get(f"{base}/watch/", headers=alice.auth).get_json()["watching"] is True

    # Bob comments, mentioning Alice and Dave (who cannot see the task).
    text = f"Fonts picked, @{alice.username}; @{dave.username} FYI."
    added = client.post(f"{base}/comments/", json={"text": text}, headers=bob.auth)
    assert added.status_code == 201, added.get_json()
    assert (added.get_json()["author"], added.get_json()["text"]) == (bob.user_id, text)
    # Carol may comment too (a viewer); she reads the comments.
    assert client.post(f"{base}/comments/", json={"text": "Nice."}, headers=carol.auth).status_code == 201
    listed = client.get(f"{base}/comments/?page_size=1", headers=carol.auth).get_json()
    assert [c["text"] for c in listed["results"]] == [text] and listed["next_page_token"]

    mention = f"You were mentioned on task #{task['id']}"
    comment = f"New comment on task #{task['id']}"
    wait_for(lambda: mention in _about(stack, alice.email, task["id"]))
    wait_for(lambda: _about(stack, carol.email, task["id"]).count(comment) == 1)
    wait_for(lambda: _about(stack, bob.email, task["id"]).count(comment) == 1)  # Carol's comment
    wait_for(lambda: _about(stack, alice.email, task["id"]).count(comment) == 1)

    # One change of three fields by Bob: one email to each other watcher, none to Bob.
    patched = client.patch(
        f"{base}/",
        json={"title": "Pick the fonts", "priority": "high", "status": "in_progress"},
        headers=bob.auth,
    )
    assert patched.status_code == 200, patched.get_json()
    status = f"Task #{task['id']} is now in progress"
    wait_for(lambda: status in _about(stack, alice.email, task["id"]))
    wait_for(lambda: status in _about(stack, carol.email, task["id"]))

    time.sleep(1.0)  # anything sent twice, or to the wrong person, would have arrived by now
    assert sorted(_about(stack, alice.email, task["id"])) == sorted([mention, comment, status])
    assert sorted(_about(stack, carol.email, task["id"])) == sorted([comment, status])
    assert sorted(_about(stack, bob.email, task["id"])) == sorted(
        [f"Task #{task['id']} was assigned to you", comment]
    )
    assert _about(stack, dave.email, task["id"]) == []

    # The activity: every change with its actor, old and new values, oldest first.
    activity = client.get(f"{base}/activity/?page_size=100", headers=carol.auth).get_json()["results"]
    summary = [(a["actor"], a["kind"], a["field"], a["old_value"], a["new_value"]) for a in activity]
    assert summary == [
        (alice.user_id, "created", None, None, None),
        (alice.user_id, "assigned", "assigned_to", None, str(bob.user_id)),
        (bob.user_id, "comment_added", None, None, None),
        (carol.user_id, "comment_added", None, None, None),
        (bob.user_id, "field_changed", "title", "Pick fonts", "Pick the fonts"),
        (bob.user_id, "field_changed", "status", "pending", "in_progress"),
        (bob.user_id, "field_changed", "priority", "medium", "high"),
    ]

    # Carol unwatches: 200 and not watching; Dave sees none of it (404 problems).
    unwatch = client.delete(f"{base}/watch/", headers=carol.auth)
    assert unwatch.status_code == 200 and unwatch.get_json()["watching"] is False
    for path in (f"{base}/activity/", f"{base}/comments/", f"{base}/watch/"):
        answer = client.get(path, headers=dave.auth)
        assert answer.status_code == 404, path
        assert answer.headers["Content-Type"].startswith("application/problem+json")


def test_bad_comments_are_400_problems_and_others_comments_403(stack, client, new_name) -> None:
    alice = stack.register_and_verify(new_name("alice"))
    task = client.post("/api/tasks/", json={"title": "t"}, headers=alice.auth).get_json()
    base = f"/api/tasks/{task['id']}/comments/"
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": "x" * 10_001}, {"text": 5}, {"text": None}):
        answer = client.post(base, json=body, headers=alice.auth)
        assert answer.status_code == 400, (body, answer.get_json())
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert "text" in answer.get_json().get("errors", {}), body
    mine = client.post(base, json={"text": "ok"}, headers=alice.auth).get_json()
    stale = client.patch(
        f"{base}{mine['id']}/", json={"text": "new"}, headers={**alice.auth, "If-Match": '"99"'}
    )
    assert stale.status_code == 412
    assert client.get(f"{base}abc/", headers=alice.auth).status_code in (404, 405)
    assert client.delete(f"{base}{mine['id'] + 1000}/", headers=alice.auth).status_code == 404
