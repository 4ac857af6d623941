"""The RabbitMQ consumer of notify_svc's quorum queue.

Manual acks, sent after the handler's database commit; prefetch from settings;
reconnects every second at most while the broker is away, so it resumes within about a
second of the broker's return. One bad message never stops it:
- a permanent failure (a message that cannot be parsed, an event that can never be
  handled, an event whose data the database refuses: `MalformedEvent`) goes to the
  dead-letter queue at once, its reason in the header `x-taskmgr-dead-reason`;
- while a dependency is away (`common.faults.dependency_away`: the database restarting)
  the message in hand waits, retried at least every second for up to
  `_MAX_WAIT_IN_PLACE` seconds, instead of being returned: on RabbitMQ 3.x every return
  counts against the delivery limit, and an outage is no fault of the event;
- any other temporary failure (a bug, an outage past that wait) is nacked with requeue
  after a short pause; the queue's `x-delivery-limit` dead-letters it after that many tries.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import pika
from google.protobuf.message import DecodeError
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError

from common.amqp import connection_parameters, dead_letter_names, declare_topology
from common.db import retry_once_on_disconnect
from common.faults import dependency_away
from common.metrics import count_notify
from common.settings import Settings
from notify_svc.dead_letters import DEAD_AT_HEADER, DELIVERIES_HEADER, FIRST_FAILURE_HEADER
from notify_svc.notifier import Notifier, Outcome
from notify_svc.rules import MalformedEvent
from taskmgr.events.v1 import events_pb2

log = logging.getLogger(__name__)
# A paused consumer must still answer heartbeats soon enough (RabbitMQ proposes 60 s);
# pauses and waits in a callback stay well under that.
_MAX_HANDLER_PAUSE = 10.0
_MAX_WAIT_IN_PLACE = 30.0
_MAX_RETRY_INTERVAL = 1.0
# Windows handled at once, on worker threads: one waits on the database while the other
# sends, so a window's round trips do not leave notify_svc idle.
_WINDOWS_IN_FLIGHT = 2
# Why a message was dead-lettered by the consumer itself (the broker's x-death says only
# "rejected"); the text is cut to stay well inside an AMQP short string.
DEAD_REASON_HEADER = "x-taskmgr-dead-reason"
_MAX_REASON = 240
_MAX_REMEMBERED_FAILURES = 10_000


class EventConsumer:
    def __init__(self, settings: Settings, notifier: Notifier, *, backoff_max: float = 1.0) -> None:
        """`backoff_max`: the longest wait (seconds) between reconnection attempts, so the
        consumer resumes within that long of the broker's return."""
        self._settings = settings
        self._notifier = notifier
        self._backoff_max = backoff_max
        self._stopping = threading.Event()
        self._handler_failures = 0
        self._connection_failures = 0
        self._workers = ThreadPoolExecutor(_WINDOWS_IN_FLIGHT, thread_name_prefix="notify-window")
        # Event id -> when its first delivery failed (Unix milliseconds), for its dead letter;
        # this process's deliveries only (another replica's are not known here).
        self._first_failures: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="notify-consumer", daemon=True)

    def start(self) -> EventConsumer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stops after the message in hand; unacknowledged ones go back to the queue."""
        self._stopping.set()
        self._thread.join(timeout)
        self._workers.shutdown(wait=False)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume_until_stopped()
            except AMQPError as exc:
                self._connection_failures += 1
                delay = _jittered(min(self._backoff_max, 0.1 * 2**self._connection_failures))
                log.warning("consumer: broker unavailable (%r); reconnecting in %.1fs", exc, delay)
                self._stopping.wait(delay)

    def _consume_until_stopped(self) -> None:
        settings = self._settings
        with pika.BlockingConnection(connection_parameters(settings.amqp_url)) as connection:
            channel = connection.channel()
            channel.confirm_delivery()  # a message is dead-lettered (published) before its ack
            declare_topology(
                channel,
                exchange=settings.events_exchange,
                queue=settings.notify_queue,
                delivery_limit=settings.notify_delivery_limit,
            )
            channel.basic_qos(prefetch_count=settings.notify_prefetch)
            incoming: list[_Delivery] = []
            channel.basic_consume(
                settings.notify_queue, lambda _channel, *delivery: incoming.append(_Delivery(*delivery))
            )
            log.info("consuming %s", settings.notify_queue)
            self._connection_failures = 0
            # Half the prefetch each, so the broker has sent the next while one is handled.
            window_size = max(1, settings.notify_prefetch // _WINDOWS_IN_FLIGHT)
            in_flight: deque[_Window] = deque()
            try:
                # Short slices, so stop() takes effect between windows; a handled window
                # wakes the loop at once (add_callback_threadsafe).
                while not self._stopping.is_set():
                    connection.process_data_events(time_limit=0.5)
                    while in_flight and in_flight[0].done.is_set():
                        self._settle(channel, in_flight.popleft())
                    while incoming and len(in_flight) < _WINDOWS_IN_FLIGHT:
                        window = _Window(incoming[:window_size])
                        del incoming[:window_size]
                        in_flight.append(window)
                        self._workers.submit(self._handle_window, window, connection)
            finally:
                # Windows in hand finish (committed, or failed), then are settled while the
                # channel is open; what was not taken goes back to the queue when it closes.
                for window in in_flight:
                    window.done.wait()
                    if channel.is_open:
                        self._settle(channel, window)

    def _handle_window(self, window: _Window, connection: pika.BlockingConnection) -> None:
        """On a worker thread: handles a window of deliveries and notes, per delivery, how
        it is to be settled; the consumer's thread settles it (pika is not thread-safe).

        First deliveries are handled together (one batch: one transaction, emails in
        parallel), to be acknowledged with one `multiple` ack after the commit; a
        redelivered message alone, so a message that fails its batch cannot take its
        neighbours to the delivery limit with it: after one failed batch, each is tried
        on its own.
        """
        try:
            events: list[tuple[_Delivery, events_pb2.Event]] = []
            for delivery in window.deliveries:
                try:
                    events.append((delivery, events_pb2.Event.FromString(delivery.body)))
                except DecodeError as exc:
                    window.dead[delivery.method.delivery_tag] = f"{type(exc).__name__}: {exc}"
            fresh = [item for item in events if not item[0].method.redelivered]
            groups = [fresh] if fresh else []
            groups += [[item] for item in events if item[0].method.redelivered]
            for group in groups:
                self._handle_group(window, group)
        finally:
            window.done.set()
            with contextlib.suppress(AMQPError):  # closed meanwhile: nothing to wake
                connection.add_callback_threadsafe(lambda: None)  # wakes process_data_events

    def _handle_group(self, window: _Window, group: list[tuple[_Delivery, events_pb2.Event]]) -> None:
        """Handles one batch; notes what is malformed (to dead-letter) and, when the batch
        failed, what is to be returned (after a pause, taken here)."""
        try:
            outcomes = self._handle([event for _, event in group])
        except Exception as exc:
            self._handler_failures += 1
            count_notify("failed", len(group))
            pause = _jittered(min(_MAX_HANDLER_PAUSE, 0.1 * 2**self._handler_failures))
            log.exception("handling %d messages failed; requeued in %.1fs", len(group), pause)
            # A pause, so a database outage does not burn every message's delivery limit at once.
            self._stopping.wait(pause)
            for delivery, event in group:
                window.failed[delivery.method.delivery_tag] = (event, exc)
            return
        self._handler_failures = 0
        count_notify("handled", sum(outcome is True for outcome in outcomes))
        count_notify("duplicate", sum(outcome is False for outcome in outcomes))
        for (delivery, event), outcome in zip(group, outcomes, strict=True):
            window.handled.append(event.id)
            if isinstance(outcome, MalformedEvent):
                window.dead[delivery.method.delivery_tag] = f"{type(outcome).__name__}: {outcome}"

    def _settle(self, channel: BlockingChannel, window: _Window) -> None:
        """On the consumer's thread: dead-letters, returns and acknowledges a handled
        window. Windows are settled in the order they were taken, so every delivery before
        this window's is settled already and one `multiple` ack covers exactly the rest."""
        for event_id in window.handled:
            self._first_failures.pop(event_id, None)
        acked = []
        for delivery in window.deliveries:
            tag = delivery.method.delivery_tag
            if tag in window.dead:
                self._dead_letter(channel, delivery, window.dead[tag])
            elif tag in window.failed:
                self._return_or_give_up(channel, delivery, *window.failed[tag])
            else:
                acked.append(tag)
        if acked:
            channel.basic_ack(max(acked), multiple=True)

    def _return_or_give_up(
        self, channel: BlockingChannel, delivery: _Delivery, event: events_pb2.Event, error: Exception
    ) -> None:
        """Returns a failed message to the queue, or, on its last allowed delivery (the
        quorum queue counts them: x-delivery-count), dead-letters it with the reason, so
        the dead letter says why (the broker's own dead-lettering would say only
        `delivery_limit`)."""
        tag = delivery.method.delivery_tag
        deliveries = int((delivery.properties.headers or {}).get("x-delivery-count") or 0) + 1
        first = self._first_failures.setdefault(event.id, int(time.time() * 1000))
        while len(self._first_failures) > _MAX_REMEMBERED_FAILURES:
            self._first_failures.pop(next(iter(self._first_failures)))
        if deliveries < self._settings.notify_delivery_limit:
            channel.basic_nack(tag, requeue=True)
            return
        self._first_failures.pop(event.id, None)
        reason = f"failed on {deliveries} deliveries, the last: {type(error).__name__}: {error}"
        self._dead_letter(
            channel, delivery, reason, {DELIVERIES_HEADER: deliveries, FIRST_FAILURE_HEADER: first}
        )

    def _handle(self, events: list[events_pb2.Event]) -> list[Outcome]:
        """Handles `events`, waiting here while a dependency is away (see the module doc)."""
        give_up_at = time.monotonic() + _MAX_WAIT_IN_PLACE
        interval = 0.1
        while True:
            try:
                # A stale pooled connection costs a second run here, not a redelivery.
                return retry_once_on_disconnect(lambda: self._notifier.handle_batch(events))
            except Exception as exc:
                waited_enough = time.monotonic() + interval > give_up_at
                if not dependency_away(exc) or waited_enough or self._stopping.is_set():
                    raise
                log.warning("%d events wait: %r; retrying in %.1fs", len(events), exc, interval)
            self._stopping.wait(_jittered(interval))
            interval = min(_MAX_RETRY_INTERVAL, interval * 2)

    def _dead_letter(
        self, channel: BlockingChannel, delivery: _Delivery, reason: str, headers: dict | None = None
    ) -> None:
        """Publishes the message, with its reason, to the dead-letter exchange and acks it;
        if that publish is refused, rejects it (the broker dead-letters it, without the
        reason). Either way it is not delivered again."""
        method, properties = delivery.method, delivery.properties
        reason = reason[:_MAX_REASON]
        log.error("dead-lettering message %s: %s", properties.message_id, reason)
        dead_exchange, _ = dead_letter_names(self._settings.events_exchange, self._settings.notify_queue)
        given = properties.headers or {}
        properties.headers = {
            **given,
            DELIVERIES_HEADER: int(given.get("x-delivery-count") or 0) + 1,
            DEAD_AT_HEADER: int(time.time() * 1000),
            **(headers or {}),
            DEAD_REASON_HEADER: reason,
        }
        count_notify("dead_lettered")
        try:
            channel.basic_publish(dead_exchange, method.routing_key, delivery.body, properties)
        except (UnroutableError, NackError):
            channel.basic_reject(method.delivery_tag, requeue=False)
        else:
            channel.basic_ack(method.delivery_tag)


@dataclass
class _Window:
    """Deliveries handled together and, once `done`, how each is to be settled: tags to
    dead-letter (with the reason), tags that failed (with the event and the error); the
    others are acknowledged."""

    deliveries: list[_Delivery]
    dead: dict[int, str] = field(default_factory=dict)
    failed: dict[int, tuple[events_pb2.Event, Exception]] = field(default_factory=dict)
    handled: list[str] = field(default_factory=list)  # event ids
    done: threading.Event = field(default_factory=threading.Event)


class _Delivery(NamedTuple):
    method: pika.spec.Basic.Deliver
    properties: pika.BasicProperties
    body: bytes


def _jittered(ceiling: float) -> float:
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)
