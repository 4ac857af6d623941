"""The outbox relay publishing to the real RabbitMQ with publisher confirms."""

from __future__ import annotations

import pika
import pytest

from common.amqp import ConfirmingPublisher
from common.relay import start_outbox_relay
from common.settings import Settings
from taskmgr.events.v1 import events_pb2
from tests.integration.events.broker import (
    ClosedThenOpenProxy,
    take_all,
    unique_topology,
)
from tests.integration.events.producer import (
    ProducerOutbox,
    otp_requested,
    pending,
    producer_database,
    record,
    user_registered,
)
from tests.support.local import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
FAST_BACKOFF = {"backoff_base": 0.05, "backoff_max": 0.5}


@pytest.fixture
def topology(rabbitmq):
    return unique_topology(rabbitmq)


@pytest.fixture
def producer(pg_url):
    database = producer_database(pg_url)
    yield database
    database.dispose()


def settings_for(tmp_path, topology, amqp_url: str) -> Settings:
    return Settings(
        environment="test", var_dir=tmp_path, amqp_url=amqp_url,
        events_exchange=topology.exchange, notify_queue=topology.queue,
    )


def test_events_are_published_persistent_with_their_properties(tmp_path, rabbitmq, topology, producer):
    relay = start_outbox_relay(producer, ProducerOutbox, settings_for(tmp_path, topology, rabbitmq.url))
    try:
        [event] = record(producer, [otp_requested(7)])
        wait_for(lambda: pending(producer) == 0)
    finally:
        relay.stop()
    [(properties, body)] = take_all(rabbitmq.url, topology.queue)
    assert events_pb2.Event.FromString(body) == event
    assert (properties.message_id, properties.type) == (event.id, "taskmgr.user.otp_requested")
    assert properties.content_type == "application/protobuf"
    assert properties.delivery_mode == 2


def test_a_returned_message_counts_as_not_delivered(rabbitmq, topology):
    publisher = ConfirmingPublisher(
        rabbitmq.url, exchange=topology.exchange, queue=topology.queue, delivery_limit=5
    )
    try:
        [event] = record_free_events(1)
        assert publisher.deliver([event]) == [True]
        with pika.BlockingConnection(pika.URLParameters(rabbitmq.url)) as connection:
            connection.channel().queue_unbind(topology.queue, topology.exchange, routing_key="#")
        # Nothing is bound any more: the broker returns the mandatory message.
        assert publisher.deliver(record_free_events(3)) == [False, False, False]
    finally:
        publisher.close()


def record_free_events(count: int) -> list[events_pb2.Event]:
    from common.events import build_event

    return [
        build_event(source="test", event_type=event_type, subject="1", payload=payload)
        for event_type, payload in (user_registered(i) for i in range(count))
    ]


def test_broker_away_then_back_all_500_delivered_none_twice(tmp_path, rabbitmq, topology, producer):
    broker = pika.URLParameters(rabbitmq.url)
    proxy = ClosedThenOpenProxy((broker.host, broker.port))
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
    settings = settings_for(tmp_path, topology, url)
    relay = start_outbox_relay(producer, ProducerOutbox, settings, **FAST_BACKOFF)
    try:
        recorded = record(producer, [user_registered(i) for i in range(500)])  # no request fails
        assert pending(producer) == 500
        proxy.open()
        wait_for(lambda: pending(producer) == 0, timeout=30)
    finally:
        relay.stop()
        proxy.close()
    ids = [properties.message_id for properties, _ in take_all(rabbitmq.url, topology.queue)]
    assert sorted(ids) == sorted(event.id for event in recorded)
    assert len(set(ids)) == 500


def test_two_relays_on_one_outbox_publish_each_event_once(tmp_path, rabbitmq, topology, producer):
    settings = settings_for(tmp_path, topology, rabbitmq.url)
    relays = [start_outbox_relay(producer, ProducerOutbox, settings) for _ in range(2)]
    try:
        recorded = record(producer, [user_registered(i) for i in range(300)])
        wait_for(lambda: pending(producer) == 0)
    finally:
        for relay in relays:
            relay.stop()
    ids = [properties.message_id for properties, _ in take_all(rabbitmq.url, topology.queue)]
    assert sorted(ids) == sorted(event.id for event in recorded)
