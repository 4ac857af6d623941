"""notify_svc killed with SIGKILL mid-stream, then restarted: one log entry per event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from sqlalchemy import create_engine, text

from common.events import build_event
from tests.integration.events.broker import declare, message_count
from tests.integration.events.producer import user_registered
from tests.support.local import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
EVENTS = 1000
ROOT = Path(__file__).resolve().parents[3]


def publish(settings, count: int) -> set[str]:
    events = [
        build_event(source="test", event_type=event_type, subject="1", payload=payload)
        for event_type, payload in (user_registered(i) for i in range(count))
    ]
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        for event in events:
            channel.basic_publish(
                settings.events_exchange, "user.registered", event.SerializeToString(),
                pika.BasicProperties(message_id=event.id, delivery_mode=2),
            )
    return {event.id for event in events}


def start_notify_process(settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "ENVIRONMENT": "test", "VAR_DIR": str(settings.var_dir), "LOG_LEVEL": "WARNING",
        "NOTIFY_SVC_DATABASE_URL": settings.notify_svc_database_url, "NOTIFY_SVC_PORT": "0",
        "AMQP_URL": settings.amqp_url, "EVENTS_EXCHANGE": settings.events_exchange,
        "NOTIFY_QUEUE": settings.notify_queue, "SMTP_HOST": "", "USER_SVC_ADDR": settings.user_svc_addr,
        # No metrics server: a notify_svc running on the machine may hold the default port.
        "NOTIFY_SVC_METRICS_PORT": "0",
    }
    return subprocess.Popen(  # the console mailer's output is not needed
        [sys.executable, "-m", "notify_svc"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_sigkill_while_consuming_then_restart_logs_each_event_exactly_once(notify_settings):
    settings = notify_settings(smtp_host="")
    declare(settings)
    published = publish(settings, EVENTS)
    engine = create_engine(settings.notify_svc_database_url.replace("postgresql://", "postgresql+psycopg://"))

    def logged() -> int:
        with engine.connect() as connection:
            try:
                return connection.execute(text("SELECT count(*) FROM notifications")).scalar_one()
            except Exception:  # not migrated yet
                return 0

    first = start_notify_process(settings)
    try:
        wait_for(lambda: logged() >= 150, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert logged() < EVENTS  # killed mid-stream

    second = start_notify_process(settings)
    try:
        wait_for(lambda: logged() >= EVENTS, timeout=50)
        wait_for(lambda: message_count(settings.amqp_url, settings.notify_queue) == 0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT event_id FROM notifications")).scalars().all()
    engine.dispose()
    assert len(rows) == EVENTS
    assert set(rows) == published
