""""Was the assignee told?" through REST (the whole stack, RabbitMQ, the test SMTP
server): GET /api/tasks/{id}/notifications/ with the request id of the call that caused
each one, addresses for staff only, 404 for whoever may not see the task."""

from __future__ import annotations

import pytest

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
    assert sent["request_id"] == request_id and sent["attempts"] == 1 and sent["sent_at"]
    assert sent["address"] == ""  # not staff
    assert told(assignee.auth) is not None
    _, staff_auth = staff
    assert told(staff_auth)[1]["address"].endswith("@example.com")
    hidden = client.get(path, headers=outsider.auth)
    assert hidden.status_code == 404 and hidden.content_type == "application/problem+json"
    assert client.get(path).status_code == 401
    assert client.get("/api/tasks/0/notifications/", headers=user.auth).status_code == 400
