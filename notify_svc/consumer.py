"""The RabbitMQ consumer of notify_svc's quorum queue.

Manual acks, sent after the handler's database commit; prefetch from settings;
reconnects with backoff. One bad message never stops it:
- a message that cannot be parsed, or an event that can never be handled, is rejected
  without requeue and so dead-lettered at once (`<queue>.dead`, visible);
- an error while handling an event (database away, a bug) is nacked with requeue after a
  short pause; the queue's `x-delivery-limit` dead-letters it after that many tries.
"""

from __future__ import annotations

import logging
import random
import threading

import pika
from google.protobuf.message import DecodeError
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

from common.amqp import connection_parameters, declare_topology
from common.settings import Settings
from notify_svc.notifier import Notifier
from notify_svc.rules import MalformedEvent
from taskmgr.events.v1 import events_pb2

log = logging.getLogger(__name__)
# A paused consumer must still answer heartbeats soon enough; the pause stays short.
_MAX_HANDLER_PAUSE = 10.0


class EventConsumer:
    def __init__(self, settings: Settings, notifier: Notifier, *, backoff_max: float = 30.0) -> None:
        self._settings = settings
        self._notifier = notifier
        self._backoff_max = backoff_max
        self._stopping = threading.Event()
        self._handler_failures = 0
        self._connection_failures = 0
        self._thread = threading.Thread(target=self._run, name="notify-consumer", daemon=True)

    def start(self) -> EventConsumer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stops after the message in hand; unacknowledged ones go back to the queue."""
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume_until_stopped()
            except AMQPError as exc:
                self._connection_failures += 1
                delay = _jittered(min(self._backoff_max, 0.5 * 2**self._connection_failures))
                log.warning("consumer: broker unavailable (%r); reconnecting in %.1fs", exc, delay)
                self._stopping.wait(delay)

    def _consume_until_stopped(self) -> None:
        settings = self._settings
        with pika.BlockingConnection(connection_parameters(settings.amqp_url)) as connection:
            channel = connection.channel()
            declare_topology(
                channel,
                exchange=settings.events_exchange,
                queue=settings.notify_queue,
                delivery_limit=settings.notify_delivery_limit,
            )
            channel.basic_qos(prefetch_count=settings.notify_prefetch)
            channel.basic_consume(settings.notify_queue, self._on_message)
            log.info("consuming %s", settings.notify_queue)
            self._connection_failures = 0
            # Short slices, so stop() takes effect between messages.
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.5)

    def _on_message(
        self, channel: BlockingChannel, method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties, body: bytes,
    ) -> None:
        try:
            self._notifier.handle(events_pb2.Event.FromString(body))
        except (DecodeError, MalformedEvent) as exc:
            log.error("dead-lettering message %s: %s", properties.message_id, exc)
            channel.basic_reject(method.delivery_tag, requeue=False)
            return
        except Exception:
            self._handler_failures += 1
            pause = _jittered(min(_MAX_HANDLER_PAUSE, 0.1 * 2**self._handler_failures))
            log.exception("handling message %s failed; requeued in %.1fs", properties.message_id, pause)
            # A pause, so a database outage does not burn every message's delivery limit at once.
            self._stopping.wait(pause)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        self._handler_failures = 0
        channel.basic_ack(method.delivery_tag)


def _jittered(ceiling: float) -> float:
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)
