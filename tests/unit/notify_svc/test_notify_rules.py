"""Who is told about each event, and what the emails say, without any I/O."""

from __future__ import annotations

import smtplib

import pytest
from google.protobuf import any_pb2

from notify_svc import rules
from notify_svc.mailer import send_with_retries
from notify_svc.messages import Email, render
from notify_svc.rules import Contact, MalformedEvent
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import task_service_pb2 as task

PENDING, DONE = task.TASK_STATUS_PENDING, task.TASK_STATUS_DONE


def people(created_by: int, assigned_to: int | None, actor: int) -> events_pb2.TaskPeople:
    return events_pb2.TaskPeople(created_by=created_by, assigned_to=assigned_to, actor=actor)


def envelope(event_type: str, payload) -> events_pb2.Event:
    data = any_pb2.Any()
    data.Pack(payload)
    return events_pb2.Event(id="e1", type=event_type, data=data)


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (rules.OTP_REQUESTED, events_pb2.OtpRequested(user_id=7, code="123456")),
        (rules.PASSWORD_RESET_REQUESTED, events_pb2.PasswordResetRequested(user_id=7, code="123456")),
        (rules.USER_VERIFIED, events_pb2.UserVerified(user_id=7)),
    ],
)
def test_user_events_tell_the_user(event_type, payload):
    assert rules.recipients(event_type, payload) == [7]


def test_registration_and_task_creation_and_deletion_tell_nobody():
    assert rules.recipients(rules.USER_REGISTERED, events_pb2.UserRegistered(user_id=7)) == []
    assert rules.recipients(rules.TASK_CREATED, events_pb2.TaskCreated(people=people(1, 2, 1))) == []
    assert rules.recipients(rules.TASK_DELETED, events_pb2.TaskDeleted(people=people(1, 2, 1))) == []


def test_assignment_tells_the_new_assignee():
    assert rules.recipients(rules.TASK_ASSIGNED, events_pb2.TaskAssigned(people=people(1, 2, 1))) == [2]


def test_assigning_yourself_or_unassigning_tells_nobody():
    assert rules.recipients(rules.TASK_ASSIGNED, events_pb2.TaskAssigned(people=people(1, 2, 2))) == []
    assert rules.recipients(rules.TASK_ASSIGNED, events_pb2.TaskAssigned(people=people(1, None, 1))) == []


@pytest.mark.parametrize(
    ("created_by", "assigned_to", "actor", "told"),
    [
        (1, 2, 3, [1, 2]),  # a third person (staff) changed it: both are told
        (1, 2, 1, [2]),  # the creator changed it: the assignee is told
        (1, 2, 2, [1]),  # the assignee changed it: the creator is told
        (1, None, 1, []),  # unassigned, changed by its creator
        (1, 1, 3, [1]),  # creator and assignee are one person: told once
    ],
)
def test_status_change_tells_creator_and_assignee_except_the_actor(created_by, assigned_to, actor, told):
    payload = events_pb2.TaskUpdated(
        people=people(created_by, assigned_to, actor), old_status=PENDING, new_status=DONE
    )
    assert rules.recipients(rules.TASK_UPDATED, payload) == told


def test_update_without_status_change_tells_nobody():
    payload = events_pb2.TaskUpdated(people=people(1, 2, 3), old_status=DONE, new_status=DONE)
    assert rules.recipients(rules.TASK_UPDATED, payload) == []


def test_user_events_feed_the_directory_and_task_events_do_not():
    payload = events_pb2.UserRegistered(user_id=7, username="ann", email="ann@example.com")
    assert rules.contact_in(rules.USER_REGISTERED, payload) == Contact(7, "ann", "ann@example.com")
    assert rules.contact_in(rules.TASK_ASSIGNED, events_pb2.TaskAssigned(people=people(1, 2, 1))) is None


def test_unpack_reads_the_payload_and_ignores_unknown_types():
    payload = events_pb2.UserVerified(user_id=7)
    assert rules.unpack(envelope(rules.USER_VERIFIED, payload)) == payload
    assert rules.unpack(envelope("taskmgr.something.new", payload)) is None


def test_an_event_with_the_wrong_payload_or_no_id_is_malformed():
    with pytest.raises(MalformedEvent):
        rules.unpack(envelope(rules.TASK_ASSIGNED, events_pb2.UserVerified(user_id=7)))
    with pytest.raises(MalformedEvent):
        rules.unpack(events_pb2.Event(type=rules.USER_VERIFIED))


def test_the_code_is_in_the_body_and_never_in_the_subject():
    ann = Contact(7, "ann", "ann@example.com")
    for event_type, payload_type in (
        (rules.OTP_REQUESTED, events_pb2.OtpRequested),
        (rules.PASSWORD_RESET_REQUESTED, events_pb2.PasswordResetRequested),
    ):
        email = render(event_type, payload_type(user_id=7, code="493817", lifetime_seconds=600), ann)
        assert email.to == "ann@example.com"
        assert "493817" in email.body and "10 minutes" in email.body
        assert "493817" not in email.subject


def test_status_email_names_both_statuses():
    payload = events_pb2.TaskUpdated(task_id=5, title="Ship", old_status=PENDING, new_status=DONE)
    email = render(rules.TASK_UPDATED, payload, Contact(1, "bob", "bob@example.com"))
    assert email.subject == "Task #5 is now done"
    assert "from pending to done" in email.body


class FlakyMailer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Email] = []

    def send(self, email: Email) -> None:
        if self.failures:
            self.failures -= 1
            raise smtplib.SMTPServerDisconnected("connection lost")
        self.sent.append(email)


EMAIL = Email("ann@example.com", "subject", "body")


def test_a_send_is_retried_until_it_succeeds():
    mailer = FlakyMailer(failures=2)
    outcome = send_with_retries(mailer, EMAIL, attempts=3, base_delay=0)
    assert (outcome.sent, outcome.attempts, mailer.sent) == (True, 3, [EMAIL])


def test_a_send_gives_up_after_the_attempts_with_the_error():
    outcome = send_with_retries(FlakyMailer(failures=5), EMAIL, attempts=3, base_delay=0)
    assert (outcome.sent, outcome.attempts) == (False, 3)
    assert outcome.error == "SMTPServerDisconnected: connection lost"
