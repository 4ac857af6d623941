"""notify_svc honours users' notification settings from its own copy (PostgreSQL and
SQLite): a kind turned off is a SKIPPED entry naming the setting, for that user only;
codes always go; a settings change applies to the events after it, in a batch too; an
older settings event arriving late (or twice) never undoes a newer one."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from common.db import Database, migrate
from common.events import build_event
from notify_svc.models import Notification, NotificationPreference, NotificationStatus
from notify_svc.notifier import Notifier
from taskmgr.events.v1 import events_pb2
from tests.support.engines import ENGINES, database_url

REPO = Path(__file__).resolve().parents[3]
ANN, BOB = 1, 2
KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send(self, email) -> None:  # noqa: ANN001
        with self._lock:
            self.sent.append((email.to, email.subject))


@pytest.fixture(params=ENGINES)
def database(request, tmp_path):
    db = Database(database_url(request, request.param, tmp_path, "notify_svc"), pool_size=4)
    migrate(db, REPO / "notify_svc" / "migrations")
    yield db
    db.dispose()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def notifier(database: Database, outbox: Outbox):
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0)
    notifier.handle_batch([registered(ANN), registered(BOB)])
    yield notifier
    notifier.close()


def event(event_type: str, payload, source: str = "task_svc") -> events_pb2.Event:  # noqa: ANN001
    return build_event(source=source, event_type=event_type, subject="9", payload=payload)


def registered(user_id: int) -> events_pb2.Event:
    payload = events_pb2.UserRegistered(
        user_id=user_id, username=f"user{user_id}", email=f"user{user_id}@example.com"
    )
    return event("taskmgr.user.registered", payload, "user_svc")


def settings(user_id: int, version: int, **off: bool) -> events_pb2.Event:
    values = dict.fromkeys(KINDS, True) | {kind: False for kind in off}
    payload = events_pb2.NotificationSettingsChanged(user_id=user_id, version=version, **values)
    return event("taskmgr.user.notification_settings_changed", payload, "user_svc")


def due_soon(assignee: int) -> events_pb2.Event:
    due = Timestamp()
    due.FromDatetime(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    people = events_pb2.TaskPeople(created_by=ANN, assigned_to=assignee)
    payload = events_pb2.TaskDueSoon(task_id=9, title="t", people=people, due_date=due)
    return event("taskmgr.task.due_soon", payload)


def assigned(assignee: int) -> events_pb2.Event:
    people = events_pb2.TaskPeople(created_by=ANN, assigned_to=assignee, actor=ANN)
    return event("taskmgr.task.assigned", events_pb2.TaskAssigned(task_id=9, title="t", people=people))


def member_added(user_id: int) -> events_pb2.Event:
    payload = events_pb2.ProjectMemberAdded(project_id=3, project_name="p", user_id=user_id, actor=ANN)
    return event("taskmgr.project.member_added", payload)


def otp(user_id: int) -> events_pb2.Event:
    payload = events_pb2.OtpRequested(
        user_id=user_id, username=f"user{user_id}", email=f"user{user_id}@example.com", code="123456",
        lifetime_seconds=600,
    )
    return event("taskmgr.user.otp_requested", payload, "user_svc")


def entries(database: Database, event_id: str) -> list[tuple[int | None, str, str]]:
    with database.read() as session:
        rows = session.scalars(select(Notification).where(Notification.event_id == event_id))
        return [(row.recipient_user_id, row.status, row.error) for row in rows]


def test_a_kind_turned_off_is_skipped_with_its_reason_for_that_user_only(database, notifier, outbox) -> None:
    notifier.handle(settings(BOB, 1, due_reminders=False, project_membership=False))
    to_bob, to_ann = due_soon(BOB), due_soon(ANN)
    notifier.handle_batch([to_bob, to_ann])
    skipped = NotificationStatus.SKIPPED
    assert entries(database, to_bob.id) == [
        (BOB, skipped, "due_reminders emails are off in the user's notification settings")
    ]
    assert entries(database, to_ann.id) == [(ANN, NotificationStatus.SENT, "")]
    # Other kinds still go; so do codes, which are not settings.
    for sent in (assigned(BOB), otp(BOB)):
        notifier.handle(sent)
        assert entries(database, sent.id)[0][1] == NotificationStatus.SENT
    membership = member_added(BOB)
    notifier.handle(membership)
    assert entries(database, membership.id)[0][1] == skipped
    assert [to for to, _ in outbox.sent] == ["user1@example.com", "user2@example.com", "user2@example.com"]


def test_a_change_applies_to_the_events_after_it_in_one_batch(database, notifier) -> None:
    before, after, back = due_soon(BOB), due_soon(BOB), due_soon(BOB)
    notifier.handle_batch([before, settings(BOB, 1, due_reminders=False), after])
    notifier.handle_batch([settings(BOB, 2), back])
    assert [entries(database, e.id)[0][1] for e in (before, after, back)] == ["sent", "skipped", "sent"]


def test_an_older_settings_event_never_undoes_a_newer_one(database, notifier) -> None:
    newer, older = settings(BOB, 5, comments=False), settings(BOB, 4, assignment=False)
    notifier.handle(newer)
    notifier.handle_batch([older, newer])  # late, and again (a redelivered copy)
    late = assigned(BOB)
    notifier.handle_batch([settings(BOB, 3, assignment=False), late])  # late within a batch
    assert entries(database, late.id)[0][1] == NotificationStatus.SENT
    with database.read() as session:
        row = session.get(NotificationPreference, BOB)
    assert (row.version, row.comments, row.assignment) == (5, False, True)
