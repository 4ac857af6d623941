"""Task events that carry their recipients (TaskPeople.recipients, decided by task_svc):
that list is who is told, each once, never the actor; events recorded before it existed
fall back to the old rules; each recipient reads what the event means for them."""

from __future__ import annotations

import pytest

from notify_svc import rules
from notify_svc.messages import render
from notify_svc.rules import Contact
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import task_service_pb2 as pb

ALICE, BOB, CAROL = 1, 2, 3


def people(actor: int, told: list[int] | None, assigned_to: int | None = BOB) -> events_pb2.TaskPeople:
    value = events_pb2.TaskPeople(created_by=ALICE, assigned_to=assigned_to, actor=actor)
    if told is not None:
        value.recipients.SetInParent()
        value.recipients.user_ids.extend(told)
    return value


def contact(user_id: int) -> Contact:
    return Contact(user_id, f"user{user_id}", f"user{user_id}@example.com")


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (rules.TASK_CREATED, events_pb2.TaskCreated(task_id=9, title="t")),
        (rules.TASK_UPDATED, events_pb2.TaskUpdated(task_id=9, title="t", changed_fields=["title"])),
        (rules.TASK_ASSIGNED, events_pb2.TaskAssigned(task_id=9, title="t")),
        (rules.TASK_DELETED, events_pb2.TaskDeleted(task_id=9, title="t")),
        (rules.TASK_COMMENTED, events_pb2.TaskCommented(task_id=9, title="t", excerpt="hi")),
    ],
)
def test_the_listed_recipients_are_told_once_but_never_the_actor(event_type, payload) -> None:
    payload.people.CopyFrom(people(actor=CAROL, told=[BOB, ALICE, BOB, CAROL]))
    assert rules.recipients(event_type, payload) == [BOB, ALICE]
    for user_id in (BOB, ALICE):  # every listed event renders for every recipient
        assert render(event_type, payload, contact(user_id)).subject


def test_an_empty_list_tells_nobody_even_where_the_old_rules_told_someone() -> None:
    # A status change by Carol: the old rule told creator and assignee; both unwatched.
    payload = events_pb2.TaskUpdated(
        task_id=9, people=people(actor=CAROL, told=[]), old_status=pb.TASK_STATUS_PENDING,
        new_status=pb.TASK_STATUS_DONE,
    )
    assert rules.recipients(rules.TASK_UPDATED, payload) == []
    payload.people.ClearField("recipients")  # an event recorded before task_svc listed them
    assert rules.recipients(rules.TASK_UPDATED, payload) == [ALICE, BOB]
    assigned = events_pb2.TaskAssigned(task_id=9, people=people(actor=ALICE, told=None))
    assert rules.recipients(rules.TASK_ASSIGNED, assigned) == [BOB]


def test_an_assignment_reads_differently_for_the_new_the_old_assignee_and_watchers() -> None:
    payload = events_pb2.TaskAssigned(
        task_id=9, title="Ship it", people=people(actor=ALICE, told=[CAROL, BOB, 4], assigned_to=CAROL),
        previous_assignee=BOB,
    )
    assert render(rules.TASK_ASSIGNED, payload, contact(CAROL)).subject == "Task #9 was assigned to you"
    old = render(rules.TASK_ASSIGNED, payload, contact(BOB))
    assert old.subject == "You were unassigned from task #9"
    assert "no longer the assignee of task #9: Ship it" in old.body
    assert render(rules.TASK_ASSIGNED, payload, contact(4)).subject == "Task #9 is now assigned to user #3"
    payload.people.ClearField("assigned_to")
    assert render(rules.TASK_ASSIGNED, payload, contact(4)).subject == "Task #9 is now assigned to nobody"


def test_a_change_names_its_fields_once_a_status_change_its_statuses() -> None:
    payload = events_pb2.TaskUpdated(
        task_id=9, title="t", people=people(actor=ALICE, told=[BOB]), changed_fields=["title", "due_date"],
        old_status=pb.TASK_STATUS_PENDING, new_status=pb.TASK_STATUS_PENDING,
    )
    email = render(rules.TASK_UPDATED, payload, contact(BOB))
    assert (email.subject, "changed: title, due date." in email.body) == ("Task #9 was changed", True)
    payload.new_status = pb.TASK_STATUS_DONE
    assert render(rules.TASK_UPDATED, payload, contact(BOB)).subject == "Task #9 is now done"


def test_a_comment_tells_the_mentioned_they_were_mentioned_and_quotes_it() -> None:
    payload = events_pb2.TaskCommented(
        task_id=9, title="t", comment_id=4, excerpt="@user3 can you check?", mentioned=[CAROL],
        people=people(actor=BOB, told=[ALICE, CAROL]),
    )
    mention = render(rules.TASK_COMMENTED, payload, contact(CAROL))
    assert mention.subject == "You were mentioned on task #9"
    assert "User #2 mentioned you" in mention.body and "@user3 can you check?" in mention.body
    watcher = render(rules.TASK_COMMENTED, payload, contact(ALICE))
    assert watcher.subject == "New comment on task #9"
    assert "@user3 can you check?" in watcher.body
