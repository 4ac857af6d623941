"""After a broker outage, the outbox relay and notify_svc's consumer resume within 2 s of
the broker's return, however long the outage (their backoff is capped).

The outage is staged by a proxy in front of the shared RabbitMQ, so only this test's
connections see it (the clients see what a stopped broker does to them: connections
dropped, then refused).
"""

from __future__ import annotations

import time

import pika
import pytest

from common.relay import start_outbox_relay
from notify_svc.server import build
from tests.integration.events.broker import declare
from tests.integration.events.producer import ProducerOutbox, otp_requested, producer_database, record
from tests.support.local import wait_for
from tests.support.tcp_proxy import OutageProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 8.0  # long enough for an uncapped backoff to have grown to 4-8 s
RESUME_WITHIN_SECONDS = 2.0


@pytest.fixture
def producer(tmp_path):
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    yield database
    database.dispose()


@pytest.fixture
def broker_proxy(rabbitmq):
    real = pika.URLParameters(rabbitmq.url)
    proxy = OutageProxy((real.host, real.port))
    yield proxy
    proxy.down()


def test_relay_and_consumer_resume_within_two_seconds_of_the_brokers_return(
    notify_settings, producer, smtp, issuer, broker_proxy
):
    settings = notify_settings(amqp_url=f"amqp://guest:guest@127.0.0.1:{broker_proxy.port}/%2F")
    declare(settings)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    relay = start_outbox_relay(producer, ProducerOutbox, settings)
    try:
        record(producer, [otp_requested(70)])
        wait_for(lambda: smtp.to("user70@example.com"))

        broker_proxy.down()
        time.sleep(1.0)
        record(producer, [otp_requested(71)])  # committed while the broker is away
        time.sleep(OUTAGE_SECONDS)
        assert not smtp.to("user71@example.com")
        broker_proxy.up()
        back = time.monotonic()
        # The event needs both: the relay to publish it and the consumer to take it.
        wait_for(lambda: smtp.to("user71@example.com"), timeout=30, interval=0.02)
        resumed = time.monotonic() - back
    finally:
        relay.stop()
        server.stop(0)

    print(f"resumed {resumed:.2f} s after the broker's return")
    assert resumed < RESUME_WITHIN_SECONDS, f"resumed {resumed:.2f} s after the broker's return"
