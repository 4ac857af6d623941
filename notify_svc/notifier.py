"""Handling events: the directory, the rules, the emails and the log, exactly once.

Both entries into notify_svc (the RabbitMQ consumer, a prefetch window at a time, and
the internal DeliverEvents method, a relay batch at a time) call `Notifier.handle_batch`.
A batch is one transaction:

1. claim: the event ids are inserted into `handled_events` in one statement
   (INSERT ... ON CONFLICT DO NOTHING RETURNING, in id order so two batches lock in one
   order and cannot deadlock). That insert is the duplicate check: an id handled before
   is not returned, and a delivery of an id that another transaction is handling waits
   on PostgreSQL's row lock until that one commits (then it is not returned: nothing is
   sent twice) or rolls back (then it is claimed here). On SQLite the transaction holds
   the database's one write lock (common.db), so batches take turns.
2. the directory is read and updated (one upsert for the batch), so data the database
   refuses is found before anything is sent: then each event of the batch is handled on
   its own, and only the one refused is `MalformedEvent`;
3. the emails are sent in parallel on a small thread pool (`send_threads`, each thread
   keeping its own SMTP connection: notify_svc.mailer), each with bounded retries;
4. the log entries are inserted and the transaction commits.

An event is acknowledged (by the caller) only after that commit. If the database fails
between the sends and the commit, nothing is logged; the entries are kept in memory and
the next try of those events logs them without sending again. If notify_svc dies in that
window, the redelivered event sends its emails again: at least once, never lost; that is
the only way one event can email someone twice.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.protobuf.message import Message
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from common.db import Database, dialect_insert, utcnow
from notify_svc import account_states, preferences, rules
from notify_svc.mailer import Mailer, send_with_retries
from notify_svc.messages import render
from notify_svc.models import HandledEvent, Notification, NotificationStatus, Recipient
from notify_svc.rules import Contact
from taskmgr.events.v1 import events_pb2

log = logging.getLogger(__name__)
EMAIL = "email"
# The subject column (models.Notification); a subject is short, but never a DataError.
_MAX_SUBJECT = 200

# Per event of a batch: True (handled now), False (handled before, or by a parallel
# delivery of the same id), or the MalformedEvent saying why it can never be handled.
Outcome = bool | rules.MalformedEvent


@dataclass
class _Parsed:
    event: events_pb2.Event
    payload: Message | None
    contact: Contact | None
    user_ids: list[int]


class _RefusedBeforeSending(Exception):
    """The database refused a batch's data before any email was sent."""


class Notifier:
    def __init__(
        self, database: Database, mailer: Mailer, *, send_attempts: int, retry_base_seconds: float,
        send_threads: int = 8,
    ) -> None:
        """`send_threads`: emails of one batch sent at once (each thread its own SMTP session)."""
        self._database = database
        self._mailer = mailer
        self._send_attempts = send_attempts
        self._retry_base_seconds = retry_base_seconds
        self._senders = ThreadPoolExecutor(max_workers=send_threads, thread_name_prefix="notify-send")
        self._unlogged = _SentNotLogged()

    def close(self) -> None:
        self._senders.shutdown(wait=True)

    def handle(self, event: events_pb2.Event) -> bool:
        """Handles `event` once; False when it had been handled already. Raises
        rules.MalformedEvent for an event that can never be handled."""
        [outcome] = self.handle_batch([event])
        if isinstance(outcome, rules.MalformedEvent):
            raise outcome
        return outcome

    def handle_batch(self, events: Sequence[events_pb2.Event]) -> list[Outcome]:
        """Handles `events` (in their order) in one transaction; an `Outcome` per event.

        Malformed events (no id, a payload of the wrong type, data the database refuses:
        a value too long for its column) are outcomes, not errors: the rest is handled.
        Any other exception (the database away, a bug) means nothing was committed; the
        caller retries the batch or returns it.
        """
        outcomes: list[Outcome | None] = [None] * len(events)
        parsed: list[tuple[int, _Parsed]] = []
        seen: set[str] = set()
        for index, event in enumerate(events):
            try:
                payload = rules.unpack(event)
            except rules.MalformedEvent as exc:
                outcomes[index] = exc
                continue
            if event.id in seen:
                outcomes[index] = False  # a second copy in one batch
                continue
            seen.add(event.id)
            contact = rules.contact_in(event.type, payload)
            parsed.append((index, _Parsed(event, payload, contact, rules.recipients(event.type, payload))))
        if parsed:
            handled = self._handle_parsed([item for _, item in parsed])
            for (index, _), outcome in zip(parsed, handled, strict=True):
                outcomes[index] = outcome
        return outcomes  # type: ignore[return-value]

    def _handle_parsed(self, items: list[_Parsed]) -> list[Outcome]:
        try:
            claimed = self._handle_together(items)
        except _RefusedBeforeSending as refused:
            if len(items) == 1:
                cause = refused.__cause__
                orig = getattr(cause, "orig", cause)
                event_id = items[0].event.id[:64]
                return [rules.MalformedEvent(f"the database refuses event {event_id!r}: {orig!r}")]
            # Nothing was sent: handled one by one, only the refused event is malformed.
            return [self._handle_parsed([item])[0] for item in items]
        return [item.event.id in claimed for item in items]

    def _handle_together(self, items: list[_Parsed]) -> set[str]:
        """The ids handled now (see the module doc for the steps)."""
        received_at = utcnow()  # entries exist from now on, though they commit after sending
        told: dict[str, list[dict]] = {}  # per event, its entries once its emails are sent
        try:
            with self._database.transaction() as session:
                try:
                    claimed = _claim(session, [item.event.id for item in items], received_at)
                    mine = [item for item in items if item.event.id in claimed]
                    contacts = _directory(session, mine)
                    rule_items = [
                        preferences.Item(item.event.type, item.payload, item.user_ids) for item in mine
                    ]
                    # A deactivated account's reason wins over a setting's.
                    muted = [
                        {**off, **gone} for off, gone in zip(
                            preferences.muted(session, rule_items),
                            account_states.deactivated(session, rule_items), strict=True,
                        )
                    ]
                except (DataError, IntegrityError) as exc:
                    raise _RefusedBeforeSending from exc
                self._notify_all(mine, contacts, muted, received_at, told)
                _fail_if_mail_server_away(told)
                self._record(session, [entry for entries in told.values() for entry in entries])
        except BaseException:
            self._unlogged.keep(told)
            raise
        self._unlogged.forget(claimed)
        if len(claimed) < len(items):
            log.info("%d of %d events had been handled already", len(items) - len(claimed), len(items))
        return claimed

    def _notify_all(
        self, items: list[_Parsed], contacts: list[dict[int, Contact]], muted: list[dict[int, str]],
        received_at: object, told: dict[str, list[dict]],
    ) -> None:
        """Sends the emails of `items` and puts each event's log entries in `told`; an
        event whose emails were sent by an earlier try that was not logged is not sent
        again: its entries from then are used. A recipient in the event's `muted` (its
        kind turned off: notify_svc.preferences; their account deactivated:
        notify_svc.account_states) gets a SKIPPED entry with the reason."""
        sends: list[tuple[dict, Callable[[], dict]]] = []
        fresh: dict[str, list[dict]] = {}  # into `told` once every send has an outcome
        for item, known, off in zip(items, contacts, muted, strict=True):
            earlier = self._unlogged.get(item.event.id)
            if earlier is not None:
                told[item.event.id] = earlier
                continue
            fresh[item.event.id] = entries = []
            if not item.user_ids:
                entries.append(_entry(item.event, status=NotificationStatus.SKIPPED, created_at=received_at))
            for user_id in item.user_ids:
                if user_id in off:
                    entries.append(_entry(
                        item.event, recipient_user_id=user_id, status=NotificationStatus.SKIPPED,
                        error=off[user_id], created_at=received_at,
                    ))
                    continue
                contact = known.get(user_id)
                if contact is None or not contact.email:
                    entries.append(_entry(
                        item.event, recipient_user_id=user_id, status=NotificationStatus.FAILED,
                        error=f"no email address known for user {user_id}", created_at=received_at,
                    ))
                    continue
                entry = _entry(item.event, recipient_user_id=user_id, created_at=received_at)
                entries.append(entry)
                sends.append((entry, self._sender(item, contact)))
        if len(sends) == 1 or not getattr(self._mailer, "parallel", True):
            for entry, send in sends:
                entry.update(send())
        else:
            outcomes = self._senders.map(lambda send: send[1](), sends)
            for (entry, _), outcome in zip(sends, outcomes, strict=True):
                entry.update(outcome)
        told.update(fresh)

    def _sender(self, item: _Parsed, contact: Contact) -> Callable[[], dict]:
        assert item.payload is not None  # recipients() names nobody without a payload

        def send() -> dict:
            email = render(item.event.type, item.payload, contact)
            outcome = send_with_retries(
                self._mailer, email, attempts=self._send_attempts, base_delay=self._retry_base_seconds
            )
            if not outcome.sent:
                log.warning("email for event %s failed after %d attempts", item.event.id, outcome.attempts)
            return {
                "subject": email.subject[:_MAX_SUBJECT],
                "status": NotificationStatus.SENT if outcome.sent else NotificationStatus.FAILED,
                "attempts": outcome.attempts,
                "error": outcome.error,
                "sent_at": utcnow() if outcome.sent else None,
                _TRANSIENT: outcome.transient,
            }

        return send

    def _record(self, session: Session, entries: list[dict]) -> None:
        """The log entries of the batch, in one statement; committed by the caller."""
        if entries:
            table = Notification.__table__
            session.execute(insert(table).returning(table.c.id), entries)


class MailServerAway(ConnectionError):
    """Emails of these events failed because the mail server was away or said "later"
    (mailer.SendOutcome.transient): nothing of the batch is committed, and the caller
    retries it (a dependency away: UNAVAILABLE to a relay; the consumer waits, then
    returns it to the queue, whose delivery limit ends in the dead-letter queue)."""

    def __init__(self, event_ids: list[str], error: str) -> None:
        super().__init__(f"mail server away for {len(event_ids)} events: {error}")
        self.event_ids = event_ids


_TRANSIENT = "transient"  # an entry's mark, never a column


def _fail_if_mail_server_away(told: dict[str, list[dict]]) -> None:
    """Raises MailServerAway for the events with a transient send failure, after taking
    them out of `told`, so their retry sends again (the events sent fine are kept by the
    caller and logged without sending again); the marks come off the other entries."""
    away: dict[str, str] = {}
    for event_id, entries in told.items():
        for entry in entries:
            if entry.pop(_TRANSIENT, False):
                away.setdefault(event_id, entry["error"])
    for event_id in away:
        del told[event_id]
    if away:
        raise MailServerAway(list(away), next(iter(away.values())))


class _SentNotLogged:
    """Entries of events whose emails were sent by a try whose transaction then failed
    (the database went away before the commit), so the next try of those events (the
    consumer waiting in place, a redelivery, a relay's retry) logs them without sending
    again. Bounded (oldest forgotten first); lost with the process, which is the window
    named in the module doc."""

    _MAX_EVENTS = 10_000

    def __init__(self) -> None:
        self._entries: OrderedDict[str, list[dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, event_id: str) -> list[dict] | None:
        with self._lock:
            return self._entries.get(event_id)

    def keep(self, told: dict[str, list[dict]]) -> None:
        with self._lock:
            self._entries.update(told)
            while len(self._entries) > self._MAX_EVENTS:
                self._entries.popitem(last=False)

    def forget(self, event_ids: set[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._entries.pop(event_id, None)


# The statements below are Core statements of one shape whatever the batch's size, run
# with a list of rows (SQLAlchemy's "insertmanyvalues": multi-row VALUES in id order), so
# they are compiled once and cached; a .values([...]) of N rows was compiled per batch
# (most of notify_svc's CPU at 1,000 events/s, py-spy). RETURNING keeps a write one
# statement (without it psycopg's executemany pipelines a statement per row).


def _claim(session: Session, event_ids: list[str], now: object) -> set[str]:
    """Inserts the ids not handled yet; the set of those inserted (see the module doc)."""
    table = HandledEvent.__table__
    statement = (
        dialect_insert(session)(table).on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.event_id)
    )
    rows = [{"event_id": event_id, "handled_at": now} for event_id in sorted(event_ids)]
    return set(session.execute(statement, rows).scalars())


def _directory(session: Session, items: list[_Parsed]) -> list[dict[int, Contact]]:
    """Per event, the contacts of its recipients as of that event: the directory, updated
    by each user.* event of the batch in order (the event is the newest word), as if the
    events were handled one after the other. Upserts what the batch says, in one statement."""
    wanted = {user_id for item in items for user_id in item.user_ids}
    known: dict[int, Contact] = {}
    if wanted:
        table = Recipient.__table__
        known = {
            user_id: Contact(user_id, username, email)
            for user_id, username, email in session.execute(
                select(table.c.user_id, table.c.username, table.c.email).where(table.c.user_id.in_(wanted))
            )
        }
    said: dict[int, Contact] = {}
    views = []
    for item in items:
        if item.contact is not None:
            known[item.contact.user_id] = said[item.contact.user_id] = item.contact
        views.append({user_id: known[user_id] for user_id in item.user_ids if user_id in known})
    if said:
        _upsert_recipients(session, [said[user_id] for user_id in sorted(said)])
    return views


def _upsert_recipients(session: Session, contacts: list[Contact]) -> None:
    """Adds or updates directory rows in one statement (INSERT ... ON CONFLICT DO UPDATE,
    on both engines, one row per user id): events about one new user handled at once
    would both miss it on a read and then collide on the insert (as session.merge did)."""
    now = utcnow()
    table = Recipient.__table__
    statement = dialect_insert(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.user_id],
        set_={name: statement.excluded[name] for name in ("username", "email", "updated_at")},
    )
    session.execute(statement.returning(table.c.user_id), [
        {"user_id": c.user_id, "username": c.username, "email": c.email, "updated_at": now} for c in contacts
    ])


def _entry(event: events_pb2.Event, **fields: object) -> dict:
    return {
        "event_id": event.id, "event_type": event.type, "channel": EMAIL, "recipient_user_id": None,
        "subject": "", "attempts": 0, "error": "", "sent_at": None,
        # Cut to their columns: where an event came from never makes it malformed.
        "event_source": event.source[:50], "event_subject": event.subject[:100],
        "request_id": event.correlation_id[:100], **fields,
    }
