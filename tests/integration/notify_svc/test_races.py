"""Events about one new user handled at once (two consumer replicas, or the embedded
DeliverEvent's threads) each update the recipient directory: none of them fails on the
directory row another created meanwhile, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from common.db import Database, migrate
from common.events import build_event
from notify_svc.models import HandledEvent, Recipient
from notify_svc.notifier import Notifier
from notify_svc.rules import OTP_REQUESTED, USER_REGISTERED
from taskmgr.events.v1 import events_pb2
from tests.support.engines import ENGINES, database_url
from tests.support.parallel import at_once

REPO = Path(__file__).resolve().parents[3]
PARALLEL = 8
CONTACT = {"username": "newcomer", "email": "newcomer@example.com"}


class Outbox:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, email: object) -> None:
        self.sent.append(email)


@pytest.fixture(params=ENGINES)
def database(request, tmp_path):
    db = Database(database_url(request, request.param, tmp_path, "notify_svc"), pool_size=PARALLEL)
    migrate(db, REPO / "notify_svc" / "migrations")
    yield db
    db.dispose()


def _user_event(event_type: str, user_id: int) -> events_pb2.Event:
    if event_type == OTP_REQUESTED:
        payload = events_pb2.OtpRequested(**CONTACT, user_id=user_id, code="123456", lifetime_seconds=600)
    else:
        payload = events_pb2.UserRegistered(**CONTACT, user_id=user_id)
    return build_event(source="user_svc", event_type=event_type, subject=str(user_id), payload=payload)


def test_events_about_one_new_user_at_once_are_all_handled(database: Database) -> None:
    notifier = Notifier(database, Outbox(), send_attempts=1, retry_base_seconds=0.0)
    events = [_user_event(OTP_REQUESTED if n % 2 else USER_REGISTERED, 42) for n in range(PARALLEL)]
    outcomes = at_once([lambda event=event: notifier.handle(event) for event in events])
    assert outcomes == [True] * PARALLEL
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(HandledEvent)) == PARALLEL
        assert session.scalars(select(Recipient.user_id)).all() == [42]
