"""The outbox half of /metrics (common.metrics): depth and oldest age read when scraped,
and the relay's published and failed counts, on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from common.metrics import OutboxCollector, outbox_events
from common.relay import OutboxRelay
from tests.integration.events.producer import ProducerOutbox, otp_requested, producer_database, record
from tests.support.engines import ENGINES, database_url


class Transport:
    def __init__(self, answers: list[bool] | None) -> None:
        self.answers = answers  # None: unreachable

    def deliver(self, events):  # noqa: ANN001, ANN201
        if self.answers is None:
            raise ConnectionError("away")
        return self.answers[: len(events)]

    def close(self) -> None:
        pass


def gauges(collector: OutboxCollector) -> dict[str, float]:
    return {family.name: family.samples[0].value for family in collector.collect()}


def counted(result: str) -> float:
    return outbox_events().labels("tests", result)._value.get()


@pytest.mark.parametrize("engine", ENGINES)
def test_outbox_depth_age_and_the_relays_counts(request, tmp_path, engine):
    database = producer_database(database_url(request, engine, tmp_path, "producer"))
    collector = OutboxCollector("test_svc", lambda: database, ProducerOutbox)
    try:
        assert gauges(collector) == {"taskmgr_outbox_depth": 0, "taskmgr_outbox_oldest_event_age_seconds": 0}
        record(database, [otp_requested(n) for n in range(3)])
        an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        with database.transaction() as session:
            oldest = update(ProducerOutbox).where(ProducerOutbox.id == 1)
            session.execute(oldest.values(created_at=an_hour_ago))
        seen = gauges(collector)
        assert seen["taskmgr_outbox_depth"] == 3
        assert 3590 < seen["taskmgr_outbox_oldest_event_age_seconds"] < 3700

        before = {result: counted(result) for result in ("published", "failed")}
        with pytest.raises(ConnectionError):
            OutboxRelay(database, ProducerOutbox, Transport(None))._relay_batch()
        with pytest.raises(ConnectionError):  # two confirmed, one not
            OutboxRelay(database, ProducerOutbox, Transport([True, False, True]))._relay_batch()
        assert counted("failed") - before["failed"] == 3 + 1
        assert counted("published") - before["published"] == 2
        assert gauges(collector)["taskmgr_outbox_depth"] == 1
    finally:
        database.dispose()
