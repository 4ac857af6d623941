"""Deliveries handled in parallel (batches of a consumer, replicas, DeliverEvents calls,
the copies a relay sends again) still email each recipient once per event, on
PostgreSQL and SQLite: the insert of the event id is the duplicate check, and a
delivery of an id that another transaction is handling waits for its outcome."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from common.db import Database, migrate
from common.events import build_event
from notify_svc.models import HandledEvent, Notification, Recipient
from notify_svc.notifier import Notifier
from notify_svc.rules import MalformedEvent
from taskmgr.events.v1 import events_pb2
from tests.support.engines import ENGINES, database_url
from tests.support.parallel import at_once

REPO = Path(__file__).resolve().parents[3]
PARALLEL = 6


class SlowOutbox:
    """A mailer that takes a while per email (so parallel deliveries overlap) and keeps
    every address it was given."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.sent: list[str] = []
        self._seconds = seconds
        self._lock = threading.Lock()

    def send(self, email) -> None:  # noqa: ANN001
        time.sleep(self._seconds)
        with self._lock:
            self.sent.append(email.to)


@pytest.fixture(params=ENGINES)
def database(request, tmp_path):
    db = Database(database_url(request, request.param, tmp_path, "notify_svc"), pool_size=PARALLEL + 2)
    migrate(db, REPO / "notify_svc" / "migrations")
    yield db
    db.dispose()


def otp(user_id: int, username: str | None = None) -> events_pb2.Event:
    payload = events_pb2.OtpRequested(
        user_id=user_id, username=username or f"user{user_id}", email=f"user{user_id}@example.com",
        code="123456", lifetime_seconds=600,
    )
    return build_event(
        source="user_svc", event_type="taskmgr.user.otp_requested", subject="1", payload=payload
    )


def count(database: Database, model: type) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_one_event_delivered_many_times_at_once_is_sent_and_logged_once(database: Database) -> None:
    outbox = SlowOutbox()
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0)
    event = otp(7)
    outcomes = at_once([lambda: notifier.handle(event) for _ in range(PARALLEL)])
    assert sorted(outcomes) == [False] * (PARALLEL - 1) + [True]
    assert outbox.sent == ["user7@example.com"]
    assert (count(database, HandledEvent), count(database, Notification)) == (1, 1)
    notifier.close()


def test_overlapping_batches_at_once_send_each_event_once(database: Database) -> None:
    outbox = SlowOutbox(seconds=0.005)
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0, send_threads=4)
    events = [otp(user_id) for user_id in range(1, 41)]
    shuffled = [random.sample(events, k=30) for _ in range(PARALLEL)]  # each batch in its own order
    outcomes = at_once([lambda batch=batch: notifier.handle_batch(batch) for batch in shuffled])
    handled_now: dict[str, int] = {}
    for batch, batch_outcomes in zip(shuffled, outcomes, strict=True):
        for event, outcome in zip(batch, batch_outcomes, strict=True):
            handled_now[event.id] = handled_now.get(event.id, 0) + (outcome is True)
    delivered = {event.id for batch in shuffled for event in batch}
    assert all(handled_now[event_id] == 1 for event_id in delivered)
    assert len(outbox.sent) == len(set(outbox.sent)) == len(delivered)
    assert count(database, Notification) == len(delivered)
    notifier.close()


def test_copies_of_one_event_in_one_batch_send_once(database: Database) -> None:
    outbox = SlowOutbox(seconds=0)
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0)
    first, second = otp(1), otp(2)
    assert notifier.handle_batch([first, second, first, first]) == [True, True, False, False]
    assert notifier.handle_batch([second]) == [False]
    assert sorted(outbox.sent) == ["user1@example.com", "user2@example.com"]
    notifier.close()


def test_a_batch_reads_the_directory_as_if_its_events_came_one_by_one(database: Database) -> None:
    outbox = SlowOutbox(seconds=0)
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0)
    assigned = build_event(
        source="task_svc", event_type="taskmgr.task.assigned", subject="9",
        payload=events_pb2.TaskAssigned(
            task_id=9, title="t", people=events_pb2.TaskPeople(created_by=1, assigned_to=5, actor=1)
        ),
    )
    # The assignment names no address: it goes to the one the OTP event before it, in
    # the same batch, put in the directory; and the directory keeps the newest name.
    batch = [otp(5, username="old-name"), otp(5, username="new-name"), assigned]
    assert notifier.handle_batch(batch) == [True, True, True]
    assert outbox.sent == ["user5@example.com"] * 3
    with database.read() as session:
        assert [(r.user_id, r.username) for r in session.scalars(select(Recipient))] == [(5, "new-name")]
        statuses = session.scalars(select(Notification.status).order_by(Notification.id)).all()
    assert statuses == ["sent"] * 3
    notifier.close()


@pytest.mark.postgres
def test_data_the_database_refuses_fails_only_its_event_and_nothing_is_sent_twice(request, tmp_path) -> None:
    # PostgreSQL only: SQLite stores an over-long value as it is.
    db = Database(database_url(request, "postgresql", tmp_path, "notify_svc"), pool_size=4)
    migrate(db, REPO / "notify_svc" / "migrations")
    outbox = SlowOutbox(seconds=0)
    notifier = Notifier(db, outbox, send_attempts=1, retry_base_seconds=0.0)
    refused = otp(3, username="u" * 200)  # recipients.username is VARCHAR(150)
    outcomes = notifier.handle_batch([otp(1), otp(2), refused, otp(4)])
    assert outcomes[:2] == [True, True] and outcomes[3] is True
    assert isinstance(outcomes[2], MalformedEvent) and "StringDataRightTruncation" in str(outcomes[2])
    assert sorted(outbox.sent) == ["user1@example.com", "user2@example.com", "user4@example.com"]
    assert count(db, Notification) == 3
    notifier.close()
    db.dispose()


def test_a_try_that_failed_after_sending_is_logged_by_the_next_without_sending_again(
    database: Database, monkeypatch
) -> None:
    outbox = SlowOutbox(seconds=0)
    notifier = Notifier(database, outbox, send_attempts=1, retry_base_seconds=0.0, send_threads=2)
    real_record = Notifier._record
    failures = iter([ConnectionError("the database went away before the commit")])

    def record_failing_once(self, session, entries):  # noqa: ANN001
        for failure in failures:
            raise failure
        return real_record(self, session, entries)

    monkeypatch.setattr(Notifier, "_record", record_failing_once)
    batch = [otp(1), otp(2), otp(3)]
    with pytest.raises(ConnectionError):
        notifier.handle_batch(batch)
    assert count(database, HandledEvent) == 0  # nothing committed: the caller must try again
    assert notifier.handle_batch([otp(4), *batch]) == [True] * 4
    assert sorted(outbox.sent) == [f"user{n}@example.com" for n in (1, 2, 3, 4)]
    with database.read() as session:
        entries = session.scalars(select(Notification)).all()
    assert sorted(entry.recipient_user_id for entry in entries) == [1, 2, 3, 4]
    assert {entry.status for entry in entries} == {"sent"}
    notifier.close()
