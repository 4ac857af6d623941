"""Several relays on one outbox (a service's `*_PROCESSES`, or replicas): each row is
delivered by one of them, once, on PostgreSQL (SKIP LOCKED) and SQLite (the file's lock)."""

from __future__ import annotations

import threading
import time

import pytest

from common.relay import OutboxRelay
from tests.integration.events.producer import (
    ProducerOutbox,
    pending,
    producer_database,
    record,
    user_registered,
)
from tests.support.engines import ENGINES, database_url
from tests.support.local import wait_for


class SlowRecordingTransport:
    """Delivers everything, slowly enough that relays running together overlap."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.by_relay: dict[int, int] = {}
        self._lock = threading.Lock()

    def deliver(self, events):
        time.sleep(0.01)
        with self._lock:
            self.delivered += [event.id for event in events]
            relay = threading.get_ident()
            self.by_relay[relay] = self.by_relay.get(relay, 0) + len(events)
        return [True] * len(events)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("engine", ENGINES)
def test_relays_of_one_outbox_deliver_each_row_once(request, tmp_path, engine):
    url = database_url(request, engine, tmp_path, "producer")
    # Two engines, as two processes have: pools, sessions and relays of their own.
    databases = [producer_database(url), producer_database(url)]
    transport = SlowRecordingTransport()
    relays = [
        OutboxRelay(database, ProducerOutbox, transport, batch_size=5, poll_interval=0.01).start()
        for database in databases
    ]
    try:
        recorded = []
        for n in range(60):  # commits on both sides wake both relays
            recorded += record(databases[n % 2], [user_registered(n)])
        wait_for(lambda: pending(databases[0]) == 0, timeout=30)
    finally:
        for relay in relays:
            relay.stop()
        for database in databases:
            database.dispose()
    duplicates = sorted({event for event in transport.delivered if transport.delivered.count(event) > 1})
    assert duplicates == []
    assert sorted(transport.delivered) == sorted(event.id for event in recorded)
    assert len(transport.by_relay) == 2, "both relays should have delivered some rows"
