"""End to end, with deliveries in parallel and copies of events delivered again: every
event is emailed and logged exactly once, on RabbitMQ (two notify_svc replicas on one
queue, each handling prefetch windows with parallel sends) and on the direct transport
(DeliverEvents calls at once with overlapping batches, as relays retrying would)."""

from __future__ import annotations

import collections
import random

import grpc
import pytest

from common.events import routing_key
from common.relay import start_outbox_relay
from notify_svc.server import build
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from tests.integration.events.broker import declare, message_count, publish_raw
from tests.integration.events.producer import ProducerOutbox, otp_requested, pending, producer_database
from tests.integration.notify_svc.test_notify_consumer import log_entries
from tests.support.local import wait_for
from tests.support.parallel import at_once

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
EVENTS = 150


@pytest.fixture
def producer(tmp_path):
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    yield database
    database.dispose()


def fill(producer) -> list:  # noqa: ANN001
    with producer.transaction() as session:
        return [
            ProducerOutbox.record(
                session, source="test_svc", event_type=event_type, subject="1", payload=payload
            )
            for event_type, payload in (otp_requested(user_id) for user_id in range(1, EVENTS + 1))
        ]


def assert_each_once(smtp, settings) -> None:  # noqa: ANN001
    received = collections.Counter(message["To"] for message in smtp.messages)
    assert received == {f"user{n}@example.com": 1 for n in range(1, EVENTS + 1)}
    entries = log_entries(settings)
    assert len(entries) == len({entry.event_id for entry in entries}) == EVENTS
    assert {entry.status for entry in entries} == {"sent"}


def test_rabbitmq_two_replicas_and_redelivered_copies(notify_settings, producer, smtp, issuer):
    settings = notify_settings(notify_prefetch=16, notify_send_threads=4)
    declare(settings)
    events = fill(producer)
    # Copies of a third of them, as from a relay that died between the confirm and the delete.
    for event in random.sample(events, k=EVENTS // 3):
        publish_raw(settings.amqp_url, settings.events_exchange, routing_key(event.type),
                    event.SerializeToString(), message_id=event.id)
    replicas = [build(settings, 0, verifier=issuer.verifier()).start() for _ in range(2)]
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        wait_for(lambda: len(log_entries(settings)) >= EVENTS and pending(producer) == 0, timeout=60)
        wait_for(lambda: message_count(settings.amqp_url, settings.notify_queue) == 0, timeout=30)
    finally:
        relay.stop()
        for replica in replicas:
            replica.stop(0)
    assert_each_once(smtp, settings)
    assert message_count(settings.amqp_url, f"{settings.notify_queue}.dead") == 0


def test_direct_transport_overlapping_batches_at_once(notify_settings, producer, smtp, issuer):
    settings = notify_settings(amqp_url="", notify_send_threads=4)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    settings = settings.model_copy(update={"notify_svc_addr": f"127.0.0.1:{server.port}"})
    channel = grpc.insecure_channel(settings.notify_svc_addr)
    stub = notify_service_pb2_grpc.NotificationServiceStub(channel)
    metadata = [("x-internal-key", settings.secret("internal_key").decode())]
    events = fill(producer)
    relay = start_outbox_relay(producer, ProducerOutbox, settings)

    def deliver(batch) -> int:  # noqa: ANN001
        request = notify_service_pb2.DeliverEventsRequest(events=batch)
        return len(stub.DeliverEvents(request, metadata=metadata, timeout=60).refused)

    try:
        batches = [random.sample(events, k=EVENTS // 2) for _ in range(4)]
        assert at_once([lambda batch=batch: deliver(batch) for batch in batches]) == [0] * 4
        wait_for(lambda: pending(producer) == 0, timeout=60)
    finally:
        relay.stop()
        channel.close()
        server.stop(0)
    assert_each_once(smtp, settings)
