"""notify_svc's database away for a few seconds: events wait for it (no dead letters, no
delivery limit burnt) and are handled within about a second of its return.

The outage is staged by a proxy in front of the shared PostgreSQL, seen only by this
test's notify_svc (its pooled connections dropped, new ones refused).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from notify_svc.server import build
from tests.integration.events.broker import declare, message_count, publish_raw
from tests.integration.events.producer import otp_requested
from tests.integration.notify_svc.test_notify_consumer import log_entries
from tests.integration.notify_svc.test_poison import event_of
from tests.support.local import wait_for
from tests.support.tcp_proxy import OutageProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 6.0  # longer than six deliveries with short pauses used to last


def test_events_wait_for_the_database_and_are_handled_soon_after_it_returns(
    notify_settings, pg_url, smtp, issuer
):
    url = make_url(pg_url)
    proxy = OutageProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = notify_settings(notify_svc_database_url=proxied, notify_delivery_limit=5)
    declare(settings)
    server = build(settings, 0, verifier=issuer.verifier()).start()
    try:
        event = event_of(*otp_requested(80))
        publish_raw(settings.amqp_url, settings.events_exchange, "user.otp_requested",
                    event_of(*otp_requested(79)).SerializeToString())
        wait_for(lambda: smtp.to("user79@example.com"))  # pool warm

        proxy.down()
        exchange, body = settings.events_exchange, event.SerializeToString()
        publish_raw(settings.amqp_url, exchange, "user.otp_requested", body, message_id=event.id)
        time.sleep(OUTAGE_SECONDS)
        proxy.up()
        back = time.monotonic()
        logged = lambda: [e for e in log_entries(settings) if e.recipient_user_id == 80]  # noqa: E731
        wait_for(logged, timeout=30, interval=0.02)
        resumed = time.monotonic() - back
    finally:
        server.stop(0)
        proxy.down()

    print(f"handled {resumed:.2f} s after the database's return")
    assert message_count(settings.amqp_url, f"{settings.notify_queue}.dead") == 0
    assert resumed < 2.0
