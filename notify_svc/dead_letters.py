"""Dead letters: the events notify_svc could not handle, listed and replayed by staff.

What "dead-lettered" means depends on the transport, and both answer the same calls:

- RabbitMQ (`BrokerDeadLetters`): the messages of notify_svc's dead-letter queue
  (`<queue>.dead`, common.amqp): a poison event the consumer dead-lettered at once, or an
  event that failed on every delivery up to the queue's delivery limit (a mail server
  away longer than that). The queue stays the store: listing takes every message
  unacknowledged (a consumer with a prefetch window of the queue's depth) and gives them
  all back by closing the channel, so nothing is removed (two listings at once may each
  see part of the queue); a replay publishes the chosen ones again to notify_svc's queue (the
  default exchange, so no other binding of the topic exchange sees them twice), with
  publisher confirms, and only then acknowledges them out of the dead-letter queue.
  Reason: the consumer's header `x-taskmgr-dead-reason`, else the broker's x-death
  reason; deliveries and failure times: the consumer's headers, else x-death's.
- Embedded default (`StoredDeadLetters`): the events notify_svc refused from a relay's
  DeliverEvents (the relay then drops them), kept in notify_svc's `dead_letters` table.
  A replay hands them to the notifier again. Temporary failures (the mail server away)
  are answered UNAVAILABLE and stay in the producer's outbox, retried until delivered:
  without a broker there is no delivery limit (their age shows as
  `taskmgr_outbox_oldest_event_age_seconds`).

A replay is safe to repeat: the notifier's event-id check (handled_events) makes a
second delivery of a handled event a no-op, and a replayed id is no longer listed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pika
from google.protobuf.message import DecodeError
from sqlalchemy import delete, func, select

from common.amqp import DEAD_REASON_HEADER, connection_parameters, declare_topology
from common.db import Database, utcnow
from common.errors import PermissionDenied
from common.metrics import count_notify
from common.settings import Settings
from notify_svc.models import DeadLetter as StoredRow
from notify_svc.notifier import Notifier
from notify_svc.rules import MalformedEvent
from taskmgr.events.v1 import events_pb2

# Headers the consumer adds when it dead-letters a message itself (the broker's x-death
# is only written when the broker dead-letters it).
DELIVERIES_HEADER = "x-taskmgr-deliveries"
FIRST_FAILURE_HEADER = "x-taskmgr-first-failure"  # Unix milliseconds (an AMQP long)
DEAD_AT_HEADER = "x-taskmgr-dead-at"  # Unix milliseconds
# Headers of a past life that a replayed message must not carry.
_DEAD_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count", "x-taskmgr-")
# A listing holds every message of the queue unacknowledged at once: bounded.
MAX_LISTED = 10_000
_LIST_WAIT = 1.0  # seconds without a message before a listing ends short of the depth


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str
    reason: str
    deliveries: int
    first_failure_at: dt.datetime
    last_failure_at: dt.datetime
    request_id: str
    # The event's source and subject (task_svc, "42"), when the message is an event.
    source: str = ""
    subject: str = ""


@dataclass(frozen=True)
class Replayed:
    replayed: list[str]
    not_found: list[str]


class DeadLetters(Protocol):
    def list(self) -> list[DeadLetter]: ...
    def replay(self, ids: Sequence[str]) -> Replayed: ...
    def depth(self) -> int: ...


def require_staff(claims: object) -> None:
    """Dead letters may hold any user's data (an address, a task title): staff only."""
    if not getattr(claims, "is_staff", False):
        raise PermissionDenied("STAFF_ONLY", "Only staff may see or replay dead letters.")


class BrokerDeadLetters:
    """notify_svc's dead-letter queue on RabbitMQ (see the module doc)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topology = {
            "exchange": settings.events_exchange,
            "queue": settings.notify_queue,
            "delivery_limit": settings.notify_delivery_limit,
        }
        self._dead_queue = f"{settings.notify_queue}.dead"

    def list(self) -> list[DeadLetter]:
        with self._channel() as channel:
            return [_from_message(properties, body) for _tag, properties, body in self._take(channel)]

    def replay(self, ids: Sequence[str]) -> Replayed:
        wanted = set(ids)
        replayed: list[str] = []
        with self._channel() as channel:
            channel.confirm_delivery()
            for tag, properties, body in self._take(channel):
                event_id = properties.message_id or _event_id(body)
                if wanted and event_id not in wanted:
                    continue  # given back when the channel closes
                properties.headers = {
                    name: value for name, value in (properties.headers or {}).items()
                    if not name.startswith(_DEAD_HEADERS)
                }
                # Confirmed (BlockingChannel waits) before the dead copy is acknowledged:
                # at worst both exist for a moment, and the event-id check sends once.
                channel.basic_publish("", self._settings.notify_queue, body, properties, mandatory=True)
                channel.basic_ack(tag)
                replayed.append(event_id)
        return Replayed(replayed, sorted(wanted - set(replayed)))

    def depth(self) -> int:
        with self._channel() as channel:
            return channel.queue_declare(self._dead_queue, passive=True).method.message_count

    def _take(self, channel) -> list[tuple[int, pika.BasicProperties, bytes]]:  # noqa: ANN001
        """Every message of the dead-letter queue (at most MAX_LISTED), unacknowledged.
        Consumed with a prefetch window of the queue's depth, so the broker sends them
        at once (basic.get costs a round trip per message: 1,000 took 2.5 to 5.6 s)."""
        depth = min(channel.queue_declare(self._dead_queue, passive=True).method.message_count, MAX_LISTED)
        if not depth:
            return []
        channel.basic_qos(prefetch_count=depth)
        taken = []
        # A message dead-lettered meanwhile may join; one taken by another lister may not
        # come: the wait is bounded either way.
        for method, properties, body in channel.consume(
            self._dead_queue, auto_ack=False, inactivity_timeout=_LIST_WAIT
        ):
            if method is None:
                break
            taken.append((method.delivery_tag, properties, body))
            if len(taken) >= depth:
                break
        return taken

    def _channel(self):  # noqa: ANN202
        return _OpenChannel(self._settings.amqp_url, self._topology)


class _OpenChannel:
    """A connection and channel for one call; closing them gives back what was not acked."""

    def __init__(self, url: str, topology: dict) -> None:
        self._url = url
        self._topology = topology

    def __enter__(self):  # noqa: ANN204
        self._connection = pika.BlockingConnection(connection_parameters(self._url))
        channel = self._connection.channel()
        declare_topology(channel, **self._topology)
        return channel

    def __exit__(self, *_exc: object) -> None:
        self._connection.close()


class StoredDeadLetters:
    """The embedded default's dead letters, in notify_svc's table (see the module doc)."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self._database = database
        self._notifier = notifier

    def add(self, event: events_pb2.Event, reason: str) -> None:
        """Keeps a refused event (another refusal of the same id counts as a delivery)."""
        now = utcnow()
        with self._database.transaction() as session:
            row = session.scalars(
                select(StoredRow).where(StoredRow.event_id == event.id[:100]).limit(1)
            ).first()
            if row is None:
                session.add(StoredRow(
                    event_id=event.id[:100], event_type=event.type[:100], payload=event.SerializeToString(),
                    reason=reason, deliveries=1, first_failure_at=now, last_failure_at=now,
                ))
            else:
                row.deliveries += 1
                row.reason = reason
                row.last_failure_at = now
        count_notify("dead_lettered")

    def list(self) -> list[DeadLetter]:
        with self._database.read() as session:
            rows = list(session.scalars(select(StoredRow).order_by(StoredRow.id)))
        letters = []
        for row in rows:
            event = _event(row.payload)
            letters.append(DeadLetter(
                id=row.event_id, type=row.event_type, reason=row.reason, deliveries=row.deliveries,
                first_failure_at=row.first_failure_at, last_failure_at=row.last_failure_at,
                request_id=event.correlation_id, source=event.source, subject=event.subject,
            ))
        return letters

    def replay(self, ids: Sequence[str]) -> Replayed:
        statement = select(StoredRow).order_by(StoredRow.id)
        if ids:
            statement = statement.where(StoredRow.event_id.in_(list(ids)))
        with self._database.read() as session:
            rows = [(row.id, row.event_id, row.payload) for row in session.scalars(statement)]
        replayed = []
        for row_id, event_id, payload in rows:
            try:
                event = events_pb2.Event.FromString(payload)
                outcome = self._notifier.handle_batch([event])[0]
            except DecodeError as exc:
                outcome = MalformedEvent(str(exc))
            with self._database.transaction() as session:
                if isinstance(outcome, MalformedEvent):
                    row = session.get(StoredRow, row_id)
                    if row is not None:
                        row.deliveries += 1
                        row.reason = str(outcome)
                        row.last_failure_at = utcnow()
                    continue
                session.execute(delete(StoredRow).where(StoredRow.id == row_id))
            replayed.append(event_id)
        return Replayed(replayed, sorted(set(ids) - {event_id for _, event_id, _ in rows}))

    def depth(self) -> int:
        return stored_count(self._database)


def stored_count(database: Database) -> int:
    """How many events the embedded default holds as dead letters."""
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(StoredRow)) or 0


def _from_message(properties: pika.BasicProperties, body: bytes) -> DeadLetter:
    headers = properties.headers or {}
    deaths = headers.get("x-death") or [{}]
    first_death, last_death = deaths[-1], deaths[0]  # x-death: most recent first
    dead_at = _millis(headers.get(DEAD_AT_HEADER)) or _time(last_death.get("time")) or utcnow()
    reason = headers.get(DEAD_REASON_HEADER) or str(last_death.get("reason", "unknown"))
    deliveries = headers.get(DELIVERIES_HEADER) or (int(headers.get("x-delivery-count") or 0) + 1)
    first = headers.get(FIRST_FAILURE_HEADER)
    event = _event(body)
    event_type = properties.type or event.type
    request_id = properties.correlation_id or event.correlation_id
    return DeadLetter(
        id=properties.message_id or _event_id(body),
        type=_text(event_type),
        reason=_text(reason),
        deliveries=int(deliveries),
        first_failure_at=_millis(first) or _time(first_death.get("time")) or dead_at,
        last_failure_at=dead_at,
        request_id=_text(request_id),
        source=event.source,
        subject=event.subject,
    )


def _millis(value: object) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC) if isinstance(value, int) and value else None


def _time(value: object) -> dt.datetime | None:
    """pika gives AMQP timestamps as naive UTC datetimes."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _event_id(body: bytes) -> str:
    try:
        return events_pb2.Event.FromString(body).id
    except DecodeError:
        return ""


def _event(payload: bytes) -> events_pb2.Event:
    """The event in a message, or an empty one when it is not one."""
    try:
        return events_pb2.Event.FromString(payload)
    except DecodeError:
        return events_pb2.Event()
