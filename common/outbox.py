"""The transactional outbox: events are rows written in the same transaction as the
change they describe, so a change and its event commit (or vanish) together.

A relay publishes the rows afterwards and then deletes them (a row may hold a one-time
code, so it is not kept once delivered).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Insert, LargeBinary, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.db import RESULT_UNREAD, BigIntPK, UTCDateTime, execute_unread, utcnow
from common.events import build_event
from common.id_reuse import NEVER_REUSE_IDS
from taskmgr.events.v1 import events_pb2

# Session.info key: the session's transaction wrote outbox rows (the relay, woken by its
# commit, looks for it: common.relay).
WROTE_OUTBOX = "taskmgr.wrote_outbox"


class OutboxMixin:
    """Columns of a service's `outbox` table; each service maps it on its own Base."""

    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    # The serialized taskmgr.events.v1.Event.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def record(
        cls, session: Session, *, source: str, event_type: str, subject: str, payload: Message
    ) -> events_pb2.Event:
        """Adds the event to the session's transaction; it is published after commit.
        One INSERT, whose result is not read (pipelined: common.db), and no ORM object:
        the unit of work of one row cost more CPU than the rest of a task's create."""
        event = build_event(source=source, event_type=event_type, subject=subject, payload=payload)
        execute_unread(
            session, _insert(cls),
            {"event_id": event.id, "event_type": event.type, "payload": event.SerializeToString(),
             "created_at": utcnow()},
        )
        session.info[WROTE_OUTBOX] = True
        return event

    def event(self) -> events_pb2.Event:
        return event_of(self)


def event_of(row: Any) -> events_pb2.Event:
    """The event an outbox row holds (an OutboxMixin object, or a row with `payload`)."""
    return events_pb2.Event.FromString(row.payload)


@cache
def _insert(model: type[OutboxMixin]) -> Insert:
    """The INSERT of one `model` row, built once (SQLAlchemy's compiled cache finds it)."""
    return insert(model.__table__).inline().execution_options(**{RESULT_UNREAD: True})
