""""Was the assignee told?" through REST (the whole stack, RabbitMQ, the test SMTP
server): GET /api/tasks/{id}/notifications/ with the request id of the call that caused
each one, addresses for staff only, another member's reason and request id withheld,
404 for whoever may not see the task; paged (`?page_size=1`)."""

from __future__ import annotations

import pytest

from tests.e2e.test_reminders_rest import SETTINGS, _preference_version
from tests.e2e.test_revocation_rest import staff  # noqa: F401 (a fixture)
from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")


def test_the_assignee_was_told_and_the_request_id_leads_to_it(  # noqa: ANN001
    stack, client, user, staff, new_name  # noqa: F811
) -> None:
    assignee = stack.register_and_verify(new_name("assignee"))
    outsider = stack.register_and_verify(new_name("outsider"))
    created = client.post("/api/tasks/", headers=user.auth, json={"title": "Was I told?"})
    assert created.status_code == 201
    task_id = created.get_json()["id"]
    body = {"user_id": assignee.user_id}
    assigned = client.post(f"/api/tasks/{task_id}/assign/", headers=user.auth, json=body)
    assert assigned.status_code == 200
    request_id = assigned.headers["X-Request-ID"]
    path = f"/api/tasks/{task_id}/notifications/"

    def told(auth) -> list[dict] | None:  # noqa: ANN001
        answer = client.get(path, headers=auth)
        assert answer.status_code == 200, answer.get_json()
        results = answer.get_json()["results"]
        return results if [r["status"] for r in results] == ["skipped", "sent"] else None

    created_entry, sent = wait_for(lambda: told(user.auth), timeout=15)
    assert created_entry["event_type"] == "taskmgr.task.created" and created_entry["reason"]
    assert created_entry["recipient_user_id"] is None
    assert (sent["event_type"], sent["recipient_user_id"], sent["channel"]) == (
        "taskmgr.task.assigned", assignee.user_id, "email"
    )
    assert sent["attempts"] == 1 and sent["sent_at"]
    assert sent["address"] == ""  # not staff
    assert sent["request_id"] == ""  # the assignee's notification (the request's, the log does not say)
    assert told(assignee.auth)[1]["request_id"] == request_id
    _, staff_auth = staff
    assert told(staff_auth)[1]["address"].endswith("@example.com")
    assert told(staff_auth)[1]["request_id"] == request_id
    pages, token = [], ""
    while True:  # AIP-158: pages of one, oldest first
        answer = client.get(path, headers=user.auth, query_string={"page_size": 1, "page_token": token})
        assert answer.status_code == 200, answer.get_json()
        pages.append([entry["event_id"] for entry in answer.get_json()["results"]])
        token = answer.get_json()["next_page_token"]
        if not token:
            break
    assert pages == [[created_entry["event_id"]], [sent["event_id"]]]
    first = client.get(path, headers=user.auth, query_string={"page_size": 1}).get_json()["next_page_token"]
    refused = client.get(path, headers=user.auth, query_string={"page_token": "x" + first})
    assert refused.status_code == 400 and refused.get_json()["code"] == "INVALID_PAGE_TOKEN"
    hidden = client.get(path, headers=outsider.auth)
    assert hidden.status_code == 404 and hidden.content_type == "application/problem+json"
    assert client.get(path).status_code == 401
    assert client.get("/api/tasks/0/notifications/", headers=user.auth).status_code == 400


def test_a_member_sees_that_another_was_not_told_but_not_why(  # noqa: ANN001
    stack, client, new_name, staff  # noqa: F811
) -> None:
    """OWASP ASVS v4 8.3.1: Carol turned assignment emails off, so the skip's reason is
    her settings; Bob, a member of the same project, sees the skip, not its reason nor
    the request id; Carol and staff see both."""
    alice, bob, carol = (stack.register_and_verify(new_name(name)) for name in ("alice", "bob", "carol"))
    off = client.patch(SETTINGS, json={"assignment": False}, headers=carol.auth)
    assert off.status_code == 200, off.get_json()
    project = client.post("/api/projects/", json={"name": "Quiet"}, headers=alice.auth).get_json()
    for member in (bob, carol):
        added = client.post(f"/api/projects/{project['id']}/members/", json={"user_id": member.user_id},
                            headers=alice.auth)
        assert added.status_code == 201, added.get_json()
    wait_for(lambda: _preference_version(stack, carol.user_id) >= 1, timeout=15)
    body = {"title": "Nobody told Carol", "project_id": project["id"]}
    task_id = client.post("/api/tasks/", json=body, headers=alice.auth).get_json()["id"]
    assign = {"user_id": carol.user_id}
    assigned = client.post(f"/api/tasks/{task_id}/assign/", json=assign, headers=alice.auth)
    assert assigned.status_code == 200, assigned.get_json()
    request_id = assigned.headers["X-Request-ID"]

    def carols(auth) -> dict | None:  # noqa: ANN001
        answer = client.get(f"/api/tasks/{task_id}/notifications/", headers=auth)
        assert answer.status_code == 200, answer.get_json()
        entries = [r for r in answer.get_json()["results"] if r["recipient_user_id"] == carol.user_id]
        return entries[0] if entries and entries[0]["status"] != "pending" else None

    _, staff_auth = staff
    full = wait_for(lambda: carols(staff_auth), timeout=15)
    assert (full["event_type"], full["status"], full["request_id"]) == ("taskmgr.task.assigned", "skipped",
                                                                        request_id)
    assert "assignment" in full["reason"] and full["address"] == carol.email
    assert carols(carol.auth) == full | {"address": ""}
    seen = carols(bob.auth)
    assert seen == full | {"address": "", "reason": "", "request_id": ""}
