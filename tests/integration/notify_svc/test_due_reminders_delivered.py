"""Due-date reminders end to end without a broker: task_svc's scheduler (its real
database and outbox) -> the outbox relay -> notify_svc's DeliverEvents -> SMTP. The
assignee is emailed, or the creator of an unassigned task; a second tick emails nobody."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from sqlalchemy import func, select

from common.db import Database, migrate
from common.relay import start_outbox_relay
from notify_svc.server import build
from task_svc.models import Outbox
from task_svc.reminders import Reminders
from task_svc.server import MIGRATIONS
from taskmgr.notify.v1 import notify_service_pb2 as notify
from taskmgr.notify.v1 import notify_service_pb2_grpc
from tests.integration.events.producer import (
    ProducerOutbox,
    pending,
    producer_database,
    record,
    user_registered,
)
from tests.integration.task_svc.support import bulk_insert
from tests.support.local import wait_for

pytestmark = pytest.mark.postgres
ANN, BOB = 1, 2
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def embedded(notify_settings, issuer):
    settings = notify_settings(amqp_url="")
    server = build(settings, 0, verifier=issuer.verifier()).start()
    settings = settings.model_copy(update={"notify_svc_addr": f"127.0.0.1:{server.port}"})
    yield settings
    server.stop(0)


def test_the_assignee_or_else_the_creator_is_emailed_once(embedded, tmp_path, smtp, issuer) -> None:
    users = producer_database(f"sqlite:///{tmp_path / 'users.db'}")
    tasks = Database(f"sqlite:///{tmp_path / 'task_svc.db'}", pool_size=2)
    migrate(tasks, MIGRATIONS)
    relays = [
        start_outbox_relay(users, ProducerOutbox, embedded), start_outbox_relay(tasks, Outbox, embedded),
    ]
    try:
        record(users, [user_registered(ANN), user_registered(BOB)])
        wait_for(lambda: pending(users) == 0)
        soon, late = bulk_insert(tasks, [
            {"title": "Pick the fonts", "created_by": ANN, "assigned_to": BOB,
             "due_date": NOW + dt.timedelta(hours=3)},
            {"title": "Book the room", "created_by": ANN, "due_date": NOW - dt.timedelta(hours=3)},
        ])
        reminders = Reminders(tasks, lead=dt.timedelta(hours=24))
        for _ in range(3):  # ticks after the first find nothing to send
            reminders.run(NOW)
            relays[1].wake()
        wait_for(lambda: _outbox_depth(tasks) == 0)
    finally:
        for relay in relays:
            relay.stop()
        users.dispose()
        tasks.dispose()
    [to_bob] = smtp.to(f"user{BOB}@example.com")
    [to_ann] = smtp.to(f"user{ANN}@example.com")
    assert to_bob["Subject"] == f"Task #{soon} is due soon" and "Pick the fonts" in to_bob.get_content()
    assert to_ann["Subject"] == f"Task #{late} is overdue" and "Book the room" in to_ann.get_content()
    with grpc.insecure_channel(embedded.notify_svc_addr) as channel:
        stub = notify_service_pb2_grpc.NotificationServiceStub(channel)
        request = notify.ListNotificationsRequest()
        entries = stub.ListNotifications(request, metadata=issuer.metadata(BOB)).results
    sent = notify.NOTIFICATION_STATUS_SENT
    assert [(entry.event_type, entry.status) for entry in entries] == [("taskmgr.task.due_soon", sent)]


def _outbox_depth(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(Outbox))
