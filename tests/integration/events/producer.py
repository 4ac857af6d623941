"""A tiny producing service for tests: an outbox table of its own and helpers to fill it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

from common.db import Database
from common.outbox import OutboxMixin
from taskmgr.events.v1 import events_pb2


class ProducerBase(DeclarativeBase):
    pass


class ProducerOutbox(OutboxMixin, ProducerBase):
    __tablename__ = "outbox"


def producer_database(url: str) -> Database:
    database = Database(url, pool_size=4)
    ProducerBase.metadata.create_all(database.engine)
    return database


def otp_requested(user_id: int, code: str = "123456") -> tuple[str, events_pb2.OtpRequested]:
    return "taskmgr.user.otp_requested", events_pb2.OtpRequested(
        user_id=user_id, username=f"user{user_id}", email=f"user{user_id}@example.com",
        code=code, lifetime_seconds=600,
    )


def user_registered(user_id: int) -> tuple[str, events_pb2.UserRegistered]:
    return "taskmgr.user.registered", events_pb2.UserRegistered(
        user_id=user_id, username=f"user{user_id}", email=f"user{user_id}@example.com"
    )


def record(database: Database, events: Iterable[tuple[str, object]]) -> list[events_pb2.Event]:
    """Commits each event in its own transaction, as a service's requests would."""
    recorded = []
    for event_type, payload in events:
        with database.transaction() as session:
            recorded.append(
                ProducerOutbox.record(
                    session, source="test_svc", event_type=event_type, subject="1", payload=payload
                )
            )
    return recorded


def pending(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(ProducerOutbox))
