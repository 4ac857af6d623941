"""The dead letters through REST (the whole stack, RabbitMQ): routes generated from
notify_service.proto, staff only, problem documents for bad input."""

from __future__ import annotations

import pytest

from common.events import build_event
from taskmgr.events.v1 import events_pb2
from tests.e2e.test_revocation_rest import staff  # noqa: F401 (a fixture)
from tests.integration.events.broker import publish_raw
from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")


def listed(client, auth) -> dict[str, dict]:  # noqa: ANN001
    answer = client.get("/api/admin/dead_letters/", headers=auth)
    assert answer.status_code == 200, answer.get_json()
    return {letter["id"]: letter for letter in answer.get_json()["results"]}


def test_staff_list_and_replay_dead_letters_through_rest(stack, client, user, staff) -> None:  # noqa: ANN001, F811
    _, staff_auth = staff
    # A payload of the wrong type: refused at once, every time.
    poison = build_event(
        source="test_svc", event_type="taskmgr.task.assigned", subject="1", payload=events_pb2.OtpRequested()
    )
    settings = stack.settings
    publish_raw(settings.amqp_url, settings.events_exchange, "task.assigned", poison.SerializeToString(),
                message_id=poison.id)
    letter = wait_for(lambda: listed(client, staff_auth).get(poison.id))
    assert letter["type"] == "taskmgr.task.assigned" and "does not carry" in letter["reason"]
    assert letter["deliveries"] == 1 and letter["first_failure_at"] == letter["last_failure_at"]

    for method, path in (("get", "/api/admin/dead_letters/"), ("post", "/api/admin/dead_letters/replay/")):
        refused = getattr(client, method)(path, headers=user.auth, json={} if method == "post" else None)
        assert (refused.status_code, refused.get_json()["code"]) == (403, "STAFF_ONLY")
        assert refused.content_type == "application/problem+json"
        assert client.open(path, method=method.upper()).status_code == 401
    for body in ({"ids": "not a list"}, {"ids": ["x" * 37]}):
        bad = client.post("/api/admin/dead_letters/replay/", headers=staff_auth, json=body)
        assert bad.status_code == 400 and bad.content_type == "application/problem+json", bad.get_json()

    body = {"ids": [poison.id, "gone"]}
    replayed = client.post("/api/admin/dead_letters/replay/", headers=staff_auth, json=body)
    assert replayed.status_code == 200
    assert replayed.get_json() == {"replayed": [poison.id], "not_found": ["gone"]}
    # Still poison: handed over once more, and dead-lettered again.
    again = wait_for(lambda: listed(client, staff_auth).get(poison.id))
    assert "does not carry" in again["reason"]
