"""The outbox half of /metrics (common.metrics): depth and oldest age read when scraped,
and the relay's published and failed counts, on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import urllib.request

import pytest
from sqlalchemy import update

from common.metrics import OutboxCollector, outbox_events
from common.relay import OutboxRelay
from tests.integration.events.producer import ProducerOutbox, otp_requested, producer_database, record
from tests.support.engines import ENGINES, database_url
from tests.support.local import free_port, wait_for
from tests.support.processes import REPO


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


@pytest.mark.slow
@pytest.mark.parametrize("service", ["user_svc", "task_svc"])
def test_python_m_serves_its_outbox_gauges_on_its_metrics_port(service, tmp_path):
    metrics_port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "ENVIRONMENT": "test", "VAR_DIR": str(tmp_path), "AMQP_URL": "",
        "GRPC_SHUTDOWN_DRAIN_SECONDS": "0",
        f"{service.upper()}_PORT": str(free_port()), f"{service.upper()}_METRICS_PORT": str(metrics_port),
        "USER_SVC_ADDR": f"127.0.0.1:{free_port()}", "NOTIFY_SVC_ADDR": f"127.0.0.1:{free_port()}",
    })
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", service], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        def scraped() -> str | None:
            try:
                url = f"http://127.0.0.1:{metrics_port}/metrics"
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                    text = answer.read().decode()
            except OSError:
                return None
            return text if "taskmgr_outbox_depth" in text else None  # after the migrations

        text = wait_for(scraped, timeout=30)
    finally:
        process.terminate()
        process.wait(30)
    assert f'taskmgr_outbox_depth{{service="{service}"}} 0.0' in text
    assert f'taskmgr_outbox_oldest_event_age_seconds{{service="{service}"}} 0.0' in text
