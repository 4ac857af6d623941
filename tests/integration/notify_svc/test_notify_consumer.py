"""notify_svc consuming the real RabbitMQ, writing to PostgreSQL, mailing the test SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.amqp import dead_letter_names
from common.db import Database
from common.relay import start_outbox_relay
from notify_svc.models import Notification
from notify_svc.server import build
from tests.integration.events.broker import (
    declare,
    message_count,
    publish_raw,
    take_all,
)
from tests.integration.events.producer import (
    ProducerOutbox,
    otp_requested,
    producer_database,
    record,
    user_registered,
)
from tests.support.local import free_port, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def producer(tmp_path):
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    yield database
    database.dispose()


def start_notify(settings, issuer):
    server = build(settings, 0, verifier=issuer.verifier()).start()
    return server


def log_entries(settings) -> list[Notification]:
    database = Database(settings.database_url("notify_svc"))
    try:
        with database.read() as session:
            return list(session.scalars(select(Notification).order_by(Notification.id)))
    finally:
        database.dispose()


def test_an_otp_goes_from_the_outbox_to_the_mailbox_and_the_log_keeps_no_code(
    notify_settings, producer, smtp, issuer
):
    settings = notify_settings()
    server = start_notify(settings, issuer)
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        [event] = record(producer, [otp_requested(41, code="730215")])
        wait_for(lambda: smtp.to("user41@example.com"))
        wait_for(lambda: log_entries(settings))
    finally:
        relay.stop()
        server.stop(0)
    [message] = smtp.to("user41@example.com")
    assert "730215" in message.get_content()
    assert "730215" not in message["Subject"]
    [entry] = log_entries(settings)
    assert (entry.event_id, entry.recipient_user_id) == (event.id, 41)
    assert (entry.status, entry.attempts) == ("sent", 1)
    assert entry.created_at <= entry.sent_at  # the entry dates from receipt, not from its commit
    assert "730215" not in repr(vars(entry))


def test_a_redelivered_event_is_logged_and_mailed_once(notify_settings, producer, smtp, issuer):
    settings = notify_settings()
    [event] = record(producer, [otp_requested(42)])
    declare(settings)
    body = event.SerializeToString()
    for _ in range(2):  # extra copies, as from a relay that died between the confirm and the delete
        publish_raw(settings.amqp_url, settings.events_exchange, "user.otp_requested", body)
    record(producer, [user_registered(43)])  # a marker: once it is logged, both copies were consumed
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    server = start_notify(settings, issuer)
    try:
        wait_for(lambda: len(log_entries(settings)) == 2)
        wait_for(lambda: message_count(settings.amqp_url, settings.notify_queue) == 0)
    finally:
        relay.stop()
        server.stop(0)
    assert len(smtp.to("user42@example.com")) == 1
    assert [entry.event_type for entry in log_entries(settings)] == [
        "taskmgr.user.otp_requested", "taskmgr.user.registered",
    ]


def test_a_poison_message_is_dead_lettered_and_the_consumer_goes_on(notify_settings, producer, smtp, issuer):
    settings = notify_settings()
    _, dead_queue = dead_letter_names(settings.events_exchange, settings.notify_queue)
    declare(settings)
    server = start_notify(settings, issuer)
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        publish_raw(settings.amqp_url, settings.events_exchange, "user.registered", b"\xff\x00 not protobuf",
                    message_id="poison-1")
        record(producer, [otp_requested(44)])
        wait_for(lambda: smtp.to("user44@example.com"))
        wait_for(lambda: message_count(settings.amqp_url, dead_queue) == 1)
    finally:
        relay.stop()
        server.stop(0)
    [(properties, body)] = take_all(settings.amqp_url, dead_queue)
    assert (properties.message_id, body) == ("poison-1", b"\xff\x00 not protobuf")
    assert [entry.recipient_user_id for entry in log_entries(settings)] == [44]


def test_with_smtp_down_emails_are_retried_up_to_the_delivery_limit_and_the_consumer_goes_on(
    notify_settings, producer, issuer, monkeypatch
):
    # A mail server away is a dependency away (no FAILED entry, the event is retried);
    # past the delivery limit the event is a dead letter (test_dead_letters.py replays it).
    monkeypatch.setattr("notify_svc.consumer._MAX_WAIT_IN_PLACE", 0.2)
    settings = notify_settings(smtp_port=free_port(), notify_delivery_limit=2)  # nothing listens there
    _, dead_queue = dead_letter_names(settings.events_exchange, settings.notify_queue)
    # The queues exist before the first poll of the dead letters' count (notify_svc's
    # consumer declares them too, but on a busy machine after that poll: a 404).
    declare(settings)
    server = start_notify(settings, issuer)
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        record(producer, [otp_requested(45), otp_requested(46), user_registered(47)])
        wait_for(lambda: message_count(settings.amqp_url, dead_queue) == 2, timeout=60)
    finally:
        relay.stop()
        server.stop(0)
    [skipped] = log_entries(settings)
    assert (skipped.status, skipped.recipient_user_id) == ("skipped", None)
