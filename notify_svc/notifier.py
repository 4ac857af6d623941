"""Handling one event: the directory, the rules, the emails and the log, exactly once.

Both entries into notify_svc (the RabbitMQ consumer and the internal DeliverEvent
method) call `Notifier.handle`. An event already handled is recognised by its id and
does nothing. Emails are sent before the log is committed: if notify_svc dies between
the two, the redelivered event sends its email again (at least once, never lost); that
window is the only way one event can email someone twice.
"""

from __future__ import annotations

import logging

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from common.db import Database, utcnow
from notify_svc import rules
from notify_svc.mailer import Mailer, send_with_retries
from notify_svc.messages import render
from notify_svc.models import HandledEvent, Notification, NotificationStatus, Recipient
from notify_svc.rules import Contact
from taskmgr.events.v1 import events_pb2

log = logging.getLogger(__name__)
EMAIL = "email"


class Notifier:
    def __init__(self, database: Database, mailer: Mailer, *, send_attempts: int, retry_base_seconds: float):
        self._database = database
        self._mailer = mailer
        self._send_attempts = send_attempts
        self._retry_base_seconds = retry_base_seconds

    def handle(self, event: events_pb2.Event) -> bool:
        """Handles `event` once; False when it had been handled already.

        Raises rules.MalformedEvent for an event that can never be handled, including one
        whose data the database refuses (a DataError or IntegrityError of its own rows:
        a value too long for its column, out of range): retrying it cannot help.
        """
        try:
            return self._handle(event)
        except (DataError, IntegrityError) as exc:
            raise rules.MalformedEvent(f"the database refuses event {event.id[:64]!r}: {exc.orig!r}") from exc

    def _handle(self, event: events_pb2.Event) -> bool:
        payload = rules.unpack(event)
        contact = rules.contact_in(event.type, payload)
        user_ids = rules.recipients(event.type, payload)
        if not user_ids:
            # Nothing to send, so nothing to check first: the insert of the event id decides.
            return self._record(event, contact, [_entry(event, status=NotificationStatus.SKIPPED)])
        with self._database.read() as session:
            if session.get(HandledEvent, event.id) is not None:
                return False
            contacts = {
                row.user_id: Contact(row.user_id, row.username, row.email)
                for row in session.scalars(select(Recipient).where(Recipient.user_id.in_(user_ids)))
            }
        if contact is not None:
            contacts[contact.user_id] = contact  # the event itself is the newest word
        entries = [self._notify(event, payload, user_id, contacts.get(user_id)) for user_id in user_ids]
        return self._record(event, contact, entries)

    def _notify(
        self, event: events_pb2.Event, payload: Message | None, user_id: int, contact: Contact | None
    ) -> Notification:
        if contact is None or not contact.email:
            return _entry(
                event, recipient_user_id=user_id, status=NotificationStatus.FAILED,
                error=f"no email address known for user {user_id}",
            )
        assert payload is not None  # recipients() names nobody without a payload
        received_at = utcnow()  # the entry exists from now on, though it commits after sending
        email = render(event.type, payload, contact)
        outcome = send_with_retries(
            self._mailer, email, attempts=self._send_attempts, base_delay=self._retry_base_seconds
        )
        if not outcome.sent:
            log.warning("email for event %s failed after %d attempts", event.id, outcome.attempts)
        return _entry(
            event,
            recipient_user_id=user_id,
            subject=email.subject,
            status=NotificationStatus.SENT if outcome.sent else NotificationStatus.FAILED,
            attempts=outcome.attempts,
            error=outcome.error,
            created_at=received_at,
            sent_at=utcnow() if outcome.sent else None,
        )

    def _record(self, event: events_pb2.Event, contact: Contact | None, entries: list[Notification]) -> bool:
        try:
            with self._database.transaction() as session:
                session.add(HandledEvent(event_id=event.id))
                session.flush()  # a concurrent delivery of the same event stops here
                if contact is not None:
                    _upsert_recipient(session, contact)
                session.add_all(entries)
        except IntegrityError:
            with self._database.read() as session:
                if session.get(HandledEvent, event.id) is None:
                    raise
            log.info("event %s was handled concurrently", event.id)
            return False
        return True


def _upsert_recipient(session: Session, contact: Contact) -> None:
    """Adds or updates the directory row in one statement (INSERT ... ON CONFLICT DO
    UPDATE, on both engines): events about one new user handled at once would both miss
    it on a read and then collide on the insert (as session.merge did)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(Recipient).values(
        user_id=contact.user_id, username=contact.username, email=contact.email, updated_at=utcnow()
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[Recipient.user_id],
            set_={name: statement.excluded[name] for name in ("username", "email", "updated_at")},
        )
    )


def _entry(event: events_pb2.Event, **fields: object) -> Notification:
    return Notification(event_id=event.id, event_type=event.type, channel=EMAIL, **fields)
