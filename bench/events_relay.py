"""Event backbone benchmark on the real PostgreSQL and RabbitMQ.

1. Relay throughput: N events committed to an outbox on PostgreSQL, then one relay
   publishes them to RabbitMQ with publisher confirms (batches in flight); events/s.
2. Latency: events committed one at a time (each wakes the relay), consumed by
   notify_svc (console mailer off, entries SKIPPED or emailed to a discarding mailer);
   p50/p99 from the producer's commit to the notification log entry's commit.

Usage: .venv/bin/python bench/events_relay.py [--events 5000] [--latency-events 300]
Uses uniquely named databases, exchanges and queues and removes them afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from sqlalchemy import select  # noqa: E402

from common.db import Database  # noqa: E402
from common.relay import start_outbox_relay  # noqa: E402
from common.settings import Settings  # noqa: E402
from notify_svc.models import Notification  # noqa: E402
from notify_svc.server import build  # noqa: E402
from taskmgr.events.v1 import events_pb2  # noqa: E402
from tests.conftest import AMQP_URL, PG_ADMIN_URL  # noqa: E402
from tests.integration.events.broker import message_count, take_all, unique_topology  # noqa: E402
from tests.integration.events.producer import ProducerOutbox, pending, producer_database  # noqa: E402
from tests.support.infra import PostgresServer, RabbitMQ  # noqa: E402
from tests.support.tokens import TestIssuer  # noqa: E402


class DiscardingMailer:
    def send(self, email) -> None:  # noqa: ANN001
        pass


def fill_outbox(database: Database, count: int) -> None:
    with database.transaction() as session:
        for i in range(count):
            ProducerOutbox.record(
                session, source="bench", event_type="taskmgr.user.registered", subject=str(i),
                payload=events_pb2.UserRegistered(user_id=i, username=f"u{i}", email=f"u{i}@example.com"),
            )


def relay_throughput(settings: Settings, database: Database, count: int) -> float:
    fill_outbox(database, count)
    started = time.perf_counter()
    relay = start_outbox_relay(database, ProducerOutbox, settings, batch_size=500)
    while pending(database):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    relay.stop()
    assert message_count(settings.amqp_url, settings.notify_queue) == count
    take_all(settings.amqp_url, settings.notify_queue)
    return count / elapsed


def commit_to_log(settings: Settings, database: Database, count: int) -> list[float]:
    server = build(settings, 0, verifier=TestIssuer().verifier(), mailer=DiscardingMailer()).start()
    relay = start_outbox_relay(database, ProducerOutbox, settings)
    notify_db = Database(settings.database_url("notify_svc"))
    committed: dict[str, float] = {}
    try:
        for i in range(1, count + 1):
            with database.transaction() as session:
                event = ProducerOutbox.record(
                    session, source="bench", event_type="taskmgr.user.verified", subject=str(i),
                    payload=events_pb2.UserVerified(user_id=i, username=f"u{i}", email=f"u{i}@example.com"),
                )
            committed[event.id] = time.time()
            time.sleep(0.025)  # a steady stream below the consumer's capacity, not a burst
        deadline = time.monotonic() + 60
        while True:
            with notify_db.read() as session:
                rows = session.execute(select(Notification.event_id, Notification.created_at)).all()
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # created_at is stamped when the entry is flushed, right before its commit.
        return [(created_at.timestamp() - committed[event_id]) * 1000 for event_id, created_at in rows]
    finally:
        relay.stop()
        server.stop(0)
        notify_db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--latency-events", type=int, default=300)
    args = parser.parse_args()

    postgres = PostgresServer(PG_ADMIN_URL, prefix="tm_bench")
    rabbitmq = RabbitMQ(AMQP_URL, prefix="tm-bench")
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            for run in ("throughput", "latency"):
                topology = unique_topology(rabbitmq)
                settings = Settings(
                    environment="test", var_dir=Path(var_dir), amqp_url=rabbitmq.url, log_level="WARNING",
                    events_exchange=topology.exchange, notify_queue=topology.queue,
                    notify_svc_database_url=postgres.create_database(),
                )
                database = producer_database(postgres.create_database())
                if run == "throughput":
                    rate = relay_throughput(settings, database, args.events)
                    print(f"relay -> RabbitMQ with confirms: {args.events} events, {rate:,.0f} events/s")
                else:
                    latencies = commit_to_log(settings, database, args.latency_events)
                    cuts = statistics.quantiles(latencies, n=100)
                    print(
                        f"commit -> notification log ({len(latencies)} events): "
                        f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms"
                    )
                database.dispose()
    finally:
        rabbitmq.delete_all()
        postgres.drop_all()


if __name__ == "__main__":
    main()
