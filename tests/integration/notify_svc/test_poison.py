"""A permanent failure is dead-lettered at once, with its reason; a temporary one is retried.

Real RabbitMQ (quorum queue with x-delivery-limit) and PostgreSQL, whose column bounds
are what refuses the data (SQLite would store an over-long value silently).
"""

from __future__ import annotations

import time

import grpc
import pytest

from common.amqp import dead_letter_names
from common.events import build_event, routing_key
from common.relay import NotifyServiceTransport
from notify_svc.consumer import DEAD_REASON_HEADER
from notify_svc.server import build
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2_grpc
from tests.integration.events.broker import declare, message_count, publish_raw, take_all
from tests.integration.events.producer import otp_requested, user_registered
from tests.integration.notify_svc.test_notify_consumer import log_entries
from tests.support.local import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def event_of(event_type: str, payload, **envelope) -> events_pb2.Event:  # noqa: ANN001
    event = build_event(source="test_svc", event_type=event_type, subject="1", payload=payload)
    for name, value in envelope.items():
        setattr(event, name, value)
    return event


def publish(settings, event: events_pb2.Event) -> None:  # noqa: ANN001
    publish_raw(
        settings.amqp_url, settings.events_exchange, routing_key(event.type), event.SerializeToString(),
        message_id=event.id[:100],
    )


def dead_letters(settings) -> list:  # noqa: ANN001
    return take_all(settings.amqp_url, dead_letter_names(settings.events_exchange, settings.notify_queue)[1])


def test_bad_data_goes_to_the_dead_letter_queue_at_once_with_its_reason(notify_settings, smtp, issuer):
    settings = notify_settings(notify_delivery_limit=5)
    declare(settings)
    long_username = user_registered(61)[1]
    long_username.username = "u" * 200  # recipients.username is VARCHAR(150): a DataError
    wrong_payload = event_of("taskmgr.user.otp_requested", events_pb2.TaskDeleted(task_id=1))
    poisons = {
        "id too long": event_of(*otp_requested(60), id="x" * 40),  # handled_events.event_id is 36
        "value too long": event_of(*user_registered(61)[:1], long_username),
        "unparseable payload": wrong_payload,
    }
    server = build(settings, 0, verifier=issuer.verifier()).start()
    try:
        started = time.monotonic()
        for event in poisons.values():
            publish(settings, event)
        publish(settings, event_of(*otp_requested(62)))  # a good one behind them
        wait_for(lambda: smtp.to("user62@example.com"))
        dead_queue = f"{settings.notify_queue}.dead"
        wait_for(lambda: message_count(settings.amqp_url, dead_queue) == len(poisons), timeout=10)
        elapsed = time.monotonic() - started
    finally:
        server.stop(0)

    # Six deliveries with growing pauses took several seconds; one delivery takes well under one.
    assert elapsed < 3, elapsed
    dead = {properties.message_id: properties for properties, _ in dead_letters(settings)}
    reasons = {why: dead[event.id[:100]].headers[DEAD_REASON_HEADER] for why, event in poisons.items()}
    assert "MalformedEvent" in reasons["id too long"] and "36" in reasons["id too long"]
    assert "StringDataRightTruncation" in reasons["value too long"]
    assert "does not carry" in reasons["unparseable payload"]
    for properties in dead.values():  # delivered once: a redelivery would carry a count
        assert not (properties.headers or {}).get("x-delivery-count"), properties.headers
    assert message_count(settings.amqp_url, settings.notify_queue) == 0
    assert [entry.recipient_user_id for entry in log_entries(settings)] == [62]


def test_an_unparseable_message_is_dead_lettered_with_its_reason(notify_settings, smtp, issuer):
    settings = notify_settings()
    declare(settings)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    try:
        publish_raw(settings.amqp_url, settings.events_exchange, "user.registered", b"\xff\x00 not protobuf",
                    message_id="garbage-1")
        wait_for(lambda: message_count(settings.amqp_url, f"{settings.notify_queue}.dead") == 1)
    finally:
        server.stop(0)
    [(properties, body)] = dead_letters(settings)
    assert (properties.message_id, body) == ("garbage-1", b"\xff\x00 not protobuf")
    assert properties.headers[DEAD_REASON_HEADER].startswith("DecodeError")


def test_an_unexpected_failure_is_still_redelivered(notify_settings, smtp, issuer, monkeypatch):
    # Not known to be permanent (a bug that a deploy may fix): requeued, not dead-lettered.
    from notify_svc import notifier as notifier_module

    settings = notify_settings()
    declare(settings)
    failures = iter([RuntimeError("a passing bug")])
    real_record = notifier_module.Notifier._record

    def flaky_record(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        for failure in failures:
            raise failure
        return real_record(self, *args, **kwargs)

    monkeypatch.setattr(notifier_module.Notifier, "_record", flaky_record)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    try:
        publish(settings, event_of(*otp_requested(63)))
        wait_for(lambda: log_entries(settings))
    finally:
        server.stop(0)
    assert [entry.recipient_user_id for entry in log_entries(settings)] == [63]
    assert message_count(settings.amqp_url, f"{settings.notify_queue}.dead") == 0


def test_without_a_broker_bad_data_is_refused_as_malformed_and_does_not_block_the_outbox(
    notify_settings, smtp, issuer
):
    settings = notify_settings(amqp_url="")
    server = build(settings, 0, verifier=issuer.verifier()).start()
    transport = NotifyServiceTransport(
        f"127.0.0.1:{server.port}", internal_key=settings.secret("internal_key"), deadline=5
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = notify_service_pb2_grpc.NotificationServiceStub(channel)
    long_email = user_registered(64)[1]
    long_email.email = "e" * 300 + "@example.com"  # recipients.email is VARCHAR(254)
    bad = event_of("taskmgr.user.registered", long_email)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            stub.DeliverEvent(bad, metadata=[("x-internal-key", settings.secret("internal_key").decode())])
        # The relay drops what notify_svc refuses as malformed, and goes on with the rest.
        assert transport.deliver([bad, event_of(*otp_requested(65))]) == [True, True]
    finally:
        channel.close()
        transport.close()
        server.stop(0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "StringDataRightTruncation" in caught.value.details()
    assert smtp.to("user65@example.com")
