"""The RabbitMQ topology of the event backbone, declared by one function.

The outbox relay and notify_svc's consumer both call `declare_topology` before they
publish or consume. Declarations are idempotent, so whichever starts first creates the
exchange, the queue and its binding, and no event is unroutable because the consumer
has not started yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass

import pika
import pika.frame
from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel
from pika.exceptions import AMQPError, ConnectionClosedByClient
from pika.spec import Basic

from common.events import routing_key
from taskmgr.events.v1 import events_pb2

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/protobuf"


def dead_letter_names(exchange: str, queue: str) -> tuple[str, str]:
    """The dead-letter exchange and queue that belong to `exchange` and `queue`."""
    return f"{exchange}.dlx", f"{queue}.dead"


# The AMQP basic properties every event is published with, each naming the envelope
# field (taskmgr.events.v1.Event) it copies; the rest are the same for every event.
PROPERTIES_FROM_ENVELOPE = {"message_id": "id", "type": "type", "correlation_id": "correlation_id"}
DELIVERY_MODE = pika.DeliveryMode.Persistent.value  # 2: written to disk by the broker
# Why the consumer dead-lettered a message (the broker's x-death says only "rejected").
DEAD_REASON_HEADER = "x-taskmgr-dead-reason"


@dataclass(frozen=True)
class Topology:
    """The event backbone as data: what `declare_topology` declares and what the AsyncAPI
    document (edge_api.asyncapi) states, from one description.

    `exchange` is a durable topic exchange; `queue` a durable quorum queue bound to it
    with `binding_key`, whose messages go through the fanout `dead_exchange` to
    `dead_queue` when rejected or redelivered more than `delivery_limit` times.
    """

    exchange: str
    queue: str
    delivery_limit: int
    binding_key: str = "#"

    @property
    def dead_exchange(self) -> str:
        return dead_letter_names(self.exchange, self.queue)[0]

    @property
    def dead_queue(self) -> str:
        return dead_letter_names(self.exchange, self.queue)[1]

    @property
    def queue_arguments(self) -> dict[str, object]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
        }

    @property
    def dead_queue_arguments(self) -> dict[str, object]:
        return {"x-queue-type": "quorum"}


def declare_topology(channel: BlockingChannel, *, exchange: str, queue: str, delivery_limit: int) -> None:
    """Durable topic exchange -> quorum queue bound to `#`, with a dead-letter path.

    A message the consumer rejects, or one redelivered more than `delivery_limit`
    times, goes through `<exchange>.dlx` to `<queue>.dead`, where it stays visible.
    """
    topology = Topology(exchange, queue, delivery_limit)
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(topology.dead_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(topology.dead_queue, durable=True, arguments=topology.dead_queue_arguments)
    channel.queue_bind(topology.dead_queue, topology.dead_exchange)
    channel.queue_declare(queue, durable=True, arguments=topology.queue_arguments)
    channel.queue_bind(queue, exchange, routing_key=topology.binding_key)


def connection_parameters(url: str) -> pika.URLParameters:
    """Parameters that fail fast on a broker that is away (callers retry with backoff)."""
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    parameters.blocked_connection_timeout = 30
    return parameters


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached or dropped the connection (retry later)."""


class ConfirmingPublisher:
    """Publishes events with publisher confirms and a whole batch in flight.

    pika's BlockingChannel waits for each confirm in turn (one round trip per event);
    here a SelectConnection runs its ioloop on its own thread, every event of a batch
    is sent at once, and the caller waits for all their confirms together. A message the
    broker returns as unroutable (`mandatory`) or nacks counts as not delivered. The
    connection is opened on first use and reopened after it is lost.
    """

    def __init__(
        self, url: str, *, exchange: str, queue: str, delivery_limit: int, confirm_timeout: float = 30.0
    ) -> None:
        self._parameters = connection_parameters(url)
        self._topology = {"exchange": exchange, "queue": queue, "delivery_limit": delivery_limit}
        self._exchange = exchange
        self._confirm_timeout = confirm_timeout
        self._link: _ConfirmLink | None = None

    def deliver(self, events: Sequence[events_pb2.Event]) -> list[bool]:
        """For each event, whether the broker confirmed it. Raises BrokerUnavailable."""
        if self._link is None or self._link.closed:
            self._connect()
        assert self._link is not None
        return self._link.publish(events, self._confirm_timeout)

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def _connect(self) -> None:
        self.close()
        try:
            with pika.BlockingConnection(self._parameters) as connection:
                declare_topology(connection.channel(), **self._topology)
        except AMQPError as exc:
            raise BrokerUnavailable(f"cannot declare the topology: {exc!r}") from exc
        self._link = _ConfirmLink(self._parameters, self._exchange, open_timeout=self._confirm_timeout)


class _ConfirmLink:
    """One SelectConnection and confirm-mode channel; its callbacks run on its ioloop thread."""

    def __init__(self, parameters: pika.URLParameters, exchange: str, *, open_timeout: float) -> None:
        self._exchange = exchange
        self._channel: Channel | None = None
        self._ready = threading.Event()
        self.closed = False
        self._next_tag = 0
        self._unconfirmed: dict[int, tuple[Future[bool], str]] = {}
        self._returned: set[str] = set()
        self._batch: list[Future[bool]] = []
        self._connection = pika.SelectConnection(
            parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_gone,
            on_close_callback=self._on_connection_gone,
        )
        self._thread = threading.Thread(target=self._run, name="outbox-amqp", daemon=True)
        self._thread.start()
        if not self._ready.wait(open_timeout) or self._channel is None:
            self.close()
            raise BrokerUnavailable("could not open a confirm channel")

    def publish(self, events: Sequence[events_pb2.Event], timeout: float) -> list[bool]:
        futures: list[Future[bool]] = [Future() for _ in events]
        # Set before checking `closed`: if the ioloop ends now, it fails this batch.
        self._batch = futures
        if self.closed:
            raise BrokerUnavailable("the connection to the broker was lost")
        self._connection.ioloop.add_callback_threadsafe(lambda: self._publish_all(events, futures))
        wait(futures, timeout)
        if not all(future.done() for future in futures):
            self.close()
        return [future.done() and future.result() for future in futures]

    def close(self) -> None:
        if not self.closed:
            self._connection.ioloop.add_callback_threadsafe(self._close_connection)
        self._thread.join(timeout=10)

    # Everything below runs on the ioloop thread.

    def _run(self) -> None:
        try:
            self._connection.ioloop.start()
        finally:
            self.closed = True
            self._ready.set()
            for future in [*self._batch, *(future for future, _ in self._unconfirmed.values())]:
                if not future.done():
                    future.set_result(False)

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Channel) -> None:
        channel.add_on_close_callback(lambda _channel, _reason: self._close_connection())
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._on_confirm_mode(channel))

    def _on_confirm_mode(self, channel: Channel) -> None:
        self._channel = channel
        self._ready.set()

    def _on_connection_gone(self, connection: pika.SelectConnection, reason: object) -> None:
        if not isinstance(reason, ConnectionClosedByClient):
            log.warning("broker connection lost: %r", reason)
        connection.ioloop.stop()

    def _close_connection(self) -> None:
        if self._connection.is_closed:
            self._connection.ioloop.stop()
        elif not self._connection.is_closing:
            self._connection.close()  # ends in _on_connection_gone

    def _publish_all(self, events: Sequence[events_pb2.Event], futures: list[Future[bool]]) -> None:
        for event, future in zip(events, futures, strict=True):
            if self._channel is None or not self._channel.is_open:
                future.set_result(False)
                continue
            self._next_tag += 1
            self._unconfirmed[self._next_tag] = (future, event.id)
            self._channel.basic_publish(
                self._exchange,
                routing_key(event.type),
                event.SerializeToString(),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=DELIVERY_MODE,
                    **{name: getattr(event, key) or None for name, key in PROPERTIES_FROM_ENVELOPE.items()},
                ),
                mandatory=True,
            )

    def _on_return(self, _channel: Channel, _method: Basic.Return, properties: pika.BasicProperties,
                   _body: bytes) -> None:
        # The broker sends basic.return before the ack of the same message.
        self._returned.add(properties.message_id)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tags = (
            [tag for tag in self._unconfirmed if tag <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            future, message_id = self._unconfirmed.pop(tag)
            returned = message_id in self._returned
            self._returned.discard(message_id)
            future.set_result(isinstance(method, Basic.Ack) and not returned)
