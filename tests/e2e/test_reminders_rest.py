"""Through REST with RabbitMQ: notification settings (GET/PATCH
/api/users/notification_settings/, PATCH semantics as every PATCH, problems for bad
input), and due-date reminders emailed by the running task_svc scheduler to the assignee,
once, and skipped (with the reason in the log) for someone who turned them off."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from common.db import Database
from notify_svc.models import NotificationPreference
from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")
SETTINGS = "/api/users/notification_settings/"
ALL_ON = {"assignment": True, "status_changes": True, "comments": True, "due_reminders": True,
          "project_membership": True}


def on_off(body: dict) -> dict:
    return {kind: body[kind] for kind in ALL_ON}


def test_settings_are_read_and_patched_like_every_resource(client, user) -> None:
    first = client.get(SETTINGS, headers=user.auth)
    assert first.status_code == 200, first.get_json()
    assert on_off(first.get_json()) == ALL_ON and first.get_json()["update_time"] is None

    changed = client.patch(SETTINGS, json={"comments": False}, headers=user.auth)
    assert changed.status_code == 200, changed.get_json()
    assert on_off(changed.get_json()) == ALL_ON | {"comments": False}
    assert changed.get_json()["update_time"]
    assert on_off(client.get(SETTINGS, headers=user.auth).get_json()) == ALL_ON | {"comments": False}

    # Named by the mask and absent from the body: back to its default, on.
    masked = client.patch(f"{SETTINGS}?update_mask=comments", json={}, headers=user.auth)
    assert on_off(masked.get_json()) == ALL_ON

    for body, field in (({"sms": True}, "sms"), ({"comments": "no"}, "comments")):
        refused = client.patch(SETTINGS, json=body, headers=user.auth)
        assert refused.status_code == 400 and refused.content_type == "application/problem+json"
        assert field in refused.get_json()["errors"], refused.get_json()
    refused = client.patch(f"{SETTINGS}?update_mask=otp", json={}, headers=user.auth)
    assert refused.status_code == 400 and "update_mask" in refused.get_json()["errors"]
    assert client.get(SETTINGS).status_code == 401
    assert client.patch(SETTINGS, json={"comments": False}).status_code == 401


def _preference_version(stack, user_id: int) -> int:
    database = Database(stack.settings.notify_svc_database_url, pool_size=1)
    try:
        with database.read() as session:
            row = session.get(NotificationPreference, user_id)
            return row.version if row is not None else 0
    finally:
        database.dispose()


def test_a_due_task_reminds_its_assignee_once_unless_turned_off(stack, client, new_name) -> None:
    alice = stack.register_and_verify(new_name("alice"))
    bob = stack.register_and_verify(new_name("bob"))
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    # Assigned as it is created: a scheduler tick between a create and an assign would
    # rightly remind the creator of the then unassigned task instead.
    body = {"title": "Pay the invoice", "due_date": due, "assigned_to": bob.user_id}
    task = client.post("/api/tasks/", json=body, headers=alice.auth)
    assert task.status_code == 201, task.get_json()
    task_id = task.get_json()["id"]

    subject = f"Task #{task_id} is due soon"
    wait_for(lambda: any(mail["Subject"] == subject for mail in stack.inbox.to(bob.email)), timeout=15)
    time.sleep(1.5)  # three more ticks of the scheduler: still one email
    assert [mail["Subject"] for mail in stack.inbox.to(bob.email)].count(subject) == 1
    assert not any("due soon" in mail["Subject"] for mail in stack.inbox.to(alice.email))

    # Bob turns reminders off; once notify_svc has his settings, his next reminder is skipped.
    off = client.patch(SETTINGS, json={"due_reminders": False}, headers=bob.auth)
    assert off.status_code == 200 and off.get_json()["due_reminders"] is False
    wait_for(lambda: _preference_version(stack, bob.user_id) >= 1, timeout=15)
    later_body = {"title": "Renew the domain", "due_date": due, "assigned_to": bob.user_id}
    later = client.post("/api/tasks/", json=later_body, headers=alice.auth).get_json()["id"]

    def skipped() -> list[dict]:
        log = client.get("/api/logs/?event_type=taskmgr.task.due_soon", headers=bob.auth).get_json()
        return [entry for entry in log["results"] if entry["status"] == "skipped"]

    wait_for(lambda: skipped(), timeout=15)
    [entry] = skipped()
    assert entry["recipient_user_id"] == bob.user_id
    assert "due_reminders" in entry["error"] and "notification settings" in entry["error"]
    assert not any(mail["Subject"] == f"Task #{later} is due soon" for mail in stack.inbox.to(bob.email))
