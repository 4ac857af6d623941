"""Test helpers around the real RabbitMQ and SMTP servers."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import pika

from common.amqp import dead_letter_names, declare_topology
from tests.support.tcp_proxy import pipe


@dataclass(frozen=True)
class Topology:
    exchange: str
    queue: str

    @property
    def dead_queue(self) -> str:
        return dead_letter_names(self.exchange, self.queue)[1]


def unique_topology(rabbitmq) -> Topology:  # noqa: ANN001
    """Unique names, registered with the fixture so they are deleted after the run."""
    topology = Topology(rabbitmq.name("events"), rabbitmq.name("notify"))
    dead_exchange, dead_queue = dead_letter_names(topology.exchange, topology.queue)
    rabbitmq.exchanges.update({topology.exchange, dead_exchange})
    rabbitmq.queues.update({topology.queue, dead_queue})
    return topology


def take_all(url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Removes and returns every message in `queue`."""
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        messages = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((properties, body))


def message_count(url: str, queue: str) -> int:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        return connection.channel().queue_declare(queue, passive=True).method.message_count


def publish_raw(url: str, exchange: str, routing_key: str, body: bytes, message_id: str = "") -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange, routing_key, body, pika.BasicProperties(message_id=message_id or None, delivery_mode=2)
        )


class ClosedThenOpenProxy:
    """A port that refuses connections until `open()`, then forwards them to `target`.

    It lets a test point a client at a broker that is "down", then bring it back on
    the same address.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()

    def open(self) -> None:
        self._listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()


def declare(settings) -> None:  # noqa: ANN001
    """The topology of `settings`, as the relay and the consumer declare it."""
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        declare_topology(
            connection.channel(),
            exchange=settings.events_exchange,
            queue=settings.notify_queue,
            delivery_limit=settings.notify_delivery_limit,
        )
