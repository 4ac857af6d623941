"""A relay batch on PostgreSQL is two round trips, counted on the wire: BEGIN goes with
the SELECT that claims the rows, the DELETE of the delivered ones with the COMMIT."""

from __future__ import annotations

import pytest

from common.relay import OutboxRelay
from tests.integration.events.producer import (
    ProducerOutbox,
    pending,
    producer_database,
    record,
    user_registered,
)
from tests.support.pg_round_trips import RoundTripCounter

pytestmark = pytest.mark.postgres


class DeliversAll:
    def __init__(self) -> None:
        self.delivered: list[str] = []

    def deliver(self, events):  # noqa: ANN001, ANN201
        self.delivered += [event.id for event in events]
        return [True] * len(events)

    def close(self) -> None:
        pass


def test_a_relay_batch_is_two_round_trips_and_deletes_what_it_delivered(pg_url) -> None:
    counter = RoundTripCounter(pg_url)
    database = producer_database(counter.url)
    try:
        recorded = record(database, [user_registered(n) for n in range(3)])
        transport = DeliversAll()
        relay = OutboxRelay(database, ProducerOutbox, transport, batch_size=10)  # not started: no thread
        before, queries = counter.count, len(counter.queries)
        relay.drain()  # one batch: fewer rows than batch_size
        assert counter.count - before == 2, counter.queries[queries:]
        assert transport.delivered == [event.id for event in recorded]
        assert pending(database) == 0
    finally:
        database.dispose()
        counter.close()
