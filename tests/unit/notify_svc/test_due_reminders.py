"""taskmgr.task.due_soon and taskmgr.task.overdue: the assignee is told, or the creator
of an unassigned task (nobody caused a reminder, so nobody is left out as its actor),
and the email says when the task is or was due."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from notify_svc import rules
from notify_svc.messages import render
from notify_svc.rules import Contact
from taskmgr.events.v1 import events_pb2

DUE = dt.datetime(2026, 12, 1, 17, 30, tzinfo=dt.UTC)
KINDS = [(rules.TASK_DUE_SOON, events_pb2.TaskDueSoon), (rules.TASK_OVERDUE, events_pb2.TaskOverdue)]


def reminder(message: type, *, created_by: int, assigned_to: int | None = None):  # noqa: ANN202
    due = Timestamp()
    due.FromDatetime(DUE)
    people = events_pb2.TaskPeople(created_by=created_by, assigned_to=assigned_to, actor=0)
    return message(task_id=9, title="Pick the fonts", people=people, due_date=due)


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_the_assignee_is_told(kind: str, message: type) -> None:
    assert rules.recipients(kind, reminder(message, created_by=1, assigned_to=2)) == [2]
    assert rules.recipients(kind, reminder(message, created_by=2, assigned_to=2)) == [2]


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_the_creator_is_told_when_nobody_is_assigned(kind: str, message: type) -> None:
    assert rules.recipients(kind, reminder(message, created_by=1)) == [1]


def test_the_emails_say_when() -> None:
    bob = Contact(2, "bob", "bob@example.com")
    soon = render(rules.TASK_DUE_SOON, reminder(events_pb2.TaskDueSoon, created_by=1, assigned_to=2), bob)
    late = render(rules.TASK_OVERDUE, reminder(events_pb2.TaskOverdue, created_by=1, assigned_to=2), bob)
    assert (soon.to, soon.subject) == ("bob@example.com", "Task #9 is due soon")
    assert "Task #9 (Pick the fonts) is due on 2026-12-01 17:30 UTC." in soon.body
    assert late.subject == "Task #9 is overdue"
    assert "was due on 2026-12-01 17:30 UTC and is not done yet" in late.body


@pytest.mark.parametrize(("kind", "message"), KINDS)
def test_the_payload_type_is_checked(kind: str, message: type) -> None:
    event = events_pb2.Event(id="e1", type=kind)
    event.data.Pack(reminder(message, created_by=1))
    assert rules.unpack(event) == reminder(message, created_by=1)
    event.data.Pack(events_pb2.TaskDeleted(task_id=9))
    with pytest.raises(rules.MalformedEvent):
        rules.unpack(event)
