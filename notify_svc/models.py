"""notify_svc's tables: the recipient directory, handled events, the notification log.

A log entry is one recipient told about one event, so an event that tells two people
(a status change seen by the creator and the assignee) has two entries, unique on
(event_id, recipient_user_id); an event that tells nobody has one SKIPPED entry with
no recipient. Idempotency rests on `handled_events`, whose primary key is the event id:
it is inserted in the same transaction as the entries, so an event is logged once.
Entries never hold a code: subject and body are rendered from the event at send time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigIntPK, UTCDateTime, utcnow
from common.id_reuse import NEVER_REUSE_IDS


class Base(DeclarativeBase):
    pass


class Recipient(Base):
    """Who a user id is and where to write to them, fed by user.* events."""

    __tablename__ = "recipients"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationPreference(Base):
    """A user's notification settings as user_svc last said (user.notification_settings_changed;
    notify_svc.preferences): which kinds of email they get. No row: every kind."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    assignment: Mapped[bool] = mapped_column(Boolean)
    status_changes: Mapped[bool] = mapped_column(Boolean)
    comments: Mapped[bool] = mapped_column(Boolean)
    due_reminders: Mapped[bool] = mapped_column(Boolean)
    project_membership: Mapped[bool] = mapped_column(Boolean)
    # user_svc's version of the settings: an older event arriving late changes nothing.
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountState(Base):
    """Whether staff deactivated a user's account, as user_svc last said
    (user.active_changed; notify_svc.account_states). No row: active."""

    __tablename__ = "account_states"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    active: Mapped[bool] = mapped_column(Boolean)
    # user_svc's version of the state: an older event arriving late changes nothing.
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HandledEvent(Base):
    __tablename__ = "handled_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationStatus:
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient_user_id", name="uq_notifications_event_recipient"),
        Index("ix_notifications_recipient_id", "recipient_user_id", "id"),
        Index("ix_notifications_event_type_id", "event_type", "id"),
        Index("ix_notifications_source_subject_id", "event_source", "event_subject", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    recipient_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The event's source and subject (task_svc, "42": task 42), so what one task caused is
    # found by its id; and the request that caused it (the envelope's correlation_id).
    event_source: Mapped[str] = mapped_column(String(50), default="", server_default="")
    event_subject: Mapped[str] = mapped_column(String(100), default="", server_default="")
    request_id: Mapped[str] = mapped_column(String(100), default="", server_default="")


class DeadLetter(Base):
    """An event refused by notify_svc when events come from a relay over gRPC (no broker,
    so no dead-letter queue): kept, with its reason, until a staff replay handles it
    (notify_svc.dead_letters). Ids and types are cut to their columns: a refused event
    may be refused for an over-long one."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_event_id", "event_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(100))
    # The serialized taskmgr.events.v1.Event, as received.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    first_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
