from __future__ import annotations

import pytest

from common.settings import Settings
from tests.integration.events.broker import unique_topology
from tests.support.local import free_port
from tests.support.mailbox import start_smtp_server
from tests.support.tokens import TestIssuer


@pytest.fixture
def smtp():
    controller, inbox = start_smtp_server()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def notify_settings(tmp_path, pg_url, rabbitmq, smtp):
    """notify_svc's settings on RabbitMQ (unique names), PostgreSQL and the test SMTP server."""

    def make(**overrides) -> Settings:
        topology = unique_topology(rabbitmq)
        values = {
            "environment": "test", "var_dir": tmp_path, "notify_svc_database_url": pg_url,
            "amqp_url": rabbitmq.url, "events_exchange": topology.exchange, "notify_queue": topology.queue,
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_starttls": False,
            "email_send_attempts": 2, "email_retry_base_seconds": 0.01, "notify_prefetch": 16,
            # Nothing listens there: tokens are checked with the test issuer's key.
            "user_svc_addr": f"127.0.0.1:{free_port()}",
        }
        return Settings(**{**values, **overrides})

    return make
