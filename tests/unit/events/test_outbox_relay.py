"""The relay's loop against a fake transport: order, deletion, wake-up, backoff."""

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
from tests.support.local import wait_for


class RecordingTransport:
    """Delivers everything, except what `refuse` says; raises while `away` is set."""

    def __init__(self, refuse=lambda event: False) -> None:
        self.delivered: list[str] = []
        self.refuse = refuse
        self.away = threading.Event()
        self.calls = 0

    def deliver(self, events):
        self.calls += 1
        if self.away.is_set():
            raise ConnectionError("broker away")
        results = [not self.refuse(event) for event in events]
        self.delivered += [event.id for event, ok in zip(events, results) if ok]
        return results

    def close(self) -> None:
        pass


@pytest.fixture
def database(tmp_path):
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    yield database
    database.dispose()


def relay_for(database, transport, **tuning) -> OutboxRelay:
    tuning = {"poll_interval": 60.0, "backoff_base": 0.01, "backoff_max": 0.05, **tuning}
    return OutboxRelay(database, ProducerOutbox, transport, batch_size=10, **tuning).start()


def test_rows_are_delivered_in_order_and_deleted_without_waiting_for_the_poll(database):
    transport = RecordingTransport()
    relay = relay_for(database, transport)
    try:
        recorded = record(database, [user_registered(i) for i in range(25)])
        wait_for(lambda: len(transport.delivered) == 25)  # the poll is 60 s away: commits woke it
        assert transport.delivered == [event.id for event in recorded]
        assert pending(database) == 0
    finally:
        relay.stop()


def test_undelivered_rows_stay_and_are_retried_with_backoff(database):
    refused = set()
    transport = RecordingTransport(refuse=lambda event: event.id in refused)
    recorded = record(database, [user_registered(i) for i in range(3)])
    refused.add(recorded[1].id)
    relay = relay_for(database, transport)
    try:
        wait_for(lambda: transport.calls >= 3)  # backing off and retrying the refused row
        assert transport.delivered == [recorded[0].id, recorded[2].id]
        assert pending(database) == 1
        refused.clear()
        wait_for(lambda: pending(database) == 0)
        assert transport.delivered == [event.id for event in (recorded[0], recorded[2], recorded[1])]
    finally:
        relay.stop()


def test_while_the_transport_is_away_commits_succeed_and_nothing_is_lost(database):
    transport = RecordingTransport()
    transport.away.set()
    relay = relay_for(database, transport)
    try:
        recorded = record(database, [user_registered(i) for i in range(30)])
        wait_for(lambda: transport.calls >= 3)
        assert pending(database) == 30
        transport.away.clear()
        wait_for(lambda: pending(database) == 0)
        assert transport.delivered == [event.id for event in recorded]
    finally:
        relay.stop()


def test_a_commit_after_a_quiet_moment_is_relayed_at_once_and_the_next_ones_share_a_batch(database):
    transport = RecordingTransport()
    relay = relay_for(database, transport, linger=0.5)
    try:
        time.sleep(0.6)  # quiet since the relay's first (empty) batch
        first = record(database, [user_registered(0)])
        wait_for(lambda: transport.calls == 1, timeout=0.4)  # at once, not a linger later
        recorded = record(database, [user_registered(i) for i in range(1, 6)])  # five commits
        wait_for(lambda: len(transport.delivered) == 6)
        assert transport.calls == 2  # one batch, a linger after the first one
        assert transport.delivered == [event.id for event in first + recorded]
    finally:
        relay.stop()


def test_without_a_linger_each_wake_up_relays_at_once(database):
    transport = RecordingTransport()
    relay = relay_for(database, transport, linger=0)
    try:
        for number in range(3):
            record(database, [user_registered(number)])
            wait_for(lambda: len(transport.delivered) == number + 1)
        assert transport.calls == 3
    finally:
        relay.stop()
