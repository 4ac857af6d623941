"""Every service's operators' metrics: what the event path is doing and what it holds.

Each gRPC service serves `GET /metrics` (Prometheus text format 0.0.4) on its own
operators' port, `<SERVICE>_METRICS_PORT` on METRICS_HOST (0: none), apart from its gRPC
port, like the edge's EDGE_METRICS_PORT (edge_api.ops). A service's several processes
(`<SERVICE>_PROCESSES`) each count in their own; prometheus_client's multiprocess mode
has each write its values to files in a directory of the service's own, and the server,
in the launching process, adds them up.

Counters (monotonic, per process, summed):
- `taskmgr_outbox_events_total{service, result}`: events the outbox relay handed on
  (`published`) or could not (`failed`: the transport did not confirm them, retried).
- `taskmgr_notify_events_total{outcome}`: notify_svc's deliveries, `handled` (now),
  `duplicate` (handled before: the event-id check), `failed` (a try that failed and is
  retried) and `dead_lettered`.

Gauges, read when scraped (what is there, not what a process remembers):
- `taskmgr_outbox_depth{service}` and `taskmgr_outbox_oldest_event_age_seconds{service}`
  (0 when empty): rows waiting in the service's outbox table;
- `taskmgr_dead_letters{service}`: notify_svc's dead letters (with RabbitMQ the
  messages in its dead-letter queue; without, the events it refused).
A gauge whose source is away is left out of that scrape (and the failure logged), so an
alert on absence (`absent()`) fires, rather than a false zero.

Label values are fixed names, never request data (OWASP ASVS v4 11.1.4).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, multiprocess, start_http_server, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from common.db import Database, utcnow
from common.settings import Settings

log = logging.getLogger(__name__)

NOTIFY_OUTCOMES = ("handled", "duplicate", "failed", "dead_lettered")


@cache
def outbox_events() -> Counter:
    """Made on first use, after `prepare_multiprocess_dir` chose where values live."""
    return Counter(
        "taskmgr_outbox_events", "Outbox events handed on by the relay, or not.", ["service", "result"]
    )


@cache
def notify_events() -> Counter:
    return Counter("taskmgr_notify_events", "notify_svc's deliveries by outcome.", ["outcome"])


def count_notify(outcome: str, amount: int = 1) -> None:
    if amount:
        notify_events().labels(outcome).inc(amount)


def prepare_multiprocess_dir(subdirectory: str = "") -> Path:
    """Makes the value files' directory ready for this run, before any worker starts:
    PROMETHEUS_MULTIPROC_DIR (or a private temporary directory, removed at exit), joined
    with `subdirectory` (a service's own, so services sharing the setting never add up
    or delete each other's files), emptied of a previous run's files. Sets the variable,
    so forked workers inherit it, and the value class of the metrics made from now on."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given) / subdirectory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # only prometheus_client's files, nothing else
            stale.unlink(missing_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix=f"taskmgr-{subdirectory or 'edge'}-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.get_value_class()
    return directory


class OutboxCollector(Collector):
    """Depth and oldest-event age of one service's `outbox` table, read per scrape."""

    def __init__(self, service: str, database: Callable[[], Database], outbox_model: type) -> None:
        self._service = service
        self._database = database
        self._model = outbox_model

    def collect(self) -> Iterator[GaugeMetricFamily]:
        model = self._model
        try:
            with self._database().read() as session:
                depth, oldest = session.execute(select(func.count(), func.min(model.created_at))).one()
        except Exception:
            log.exception("metrics: cannot read the outbox of %s", self._service)
            return
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield _gauge("taskmgr_outbox_depth", "Events waiting in the outbox.", self._service, depth)
        yield _gauge(
            "taskmgr_outbox_oldest_event_age_seconds",
            "Age of the oldest event waiting in the outbox (0 when empty).", self._service, max(age, 0.0),
        )


class DeadLetterCollector(Collector):
    """How many events are dead-lettered now (`depth()` of notify_svc's dead letters)."""

    def __init__(self, service: str, depth: Callable[[], int]) -> None:
        self._service = service
        self._depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = self._depth()
        except Exception:
            log.exception("metrics: cannot count the dead letters of %s", self._service)
            return
        yield _gauge(
            "taskmgr_dead_letters", "Events in the dead letters, waiting for a replay.", self._service, depth
        )


def _gauge(name: str, documentation: str, service: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["service"])
    family.add_metric([service], value)
    return family


def lazy_database(settings: Settings, service: str) -> Callable[[], Database]:
    """The service's database for the scrapes, opened on the first (after any fork), one
    connection: scrapes are rare and never compete with requests for the pool."""
    lock = threading.Lock()
    opened: list[Database] = []

    def get() -> Database:
        with lock:
            if not opened:
                opened.append(Database(settings.database_url(service), pool_size=1))
            return opened[0]

    return get


def start_metrics_server(settings: Settings, service: str, collectors: list[Collector]) -> int | None:
    """Serves /metrics for `service` on METRICS_HOST:`<SERVICE>_METRICS_PORT` from a
    daemon thread of the calling process (before it forks its workers); None when that
    port is 0. Returns the port. Stops the process with a clear message when it is taken."""
    port = getattr(settings, f"{service}_metrics_port")
    if not port:
        return None
    prepare_multiprocess_dir(service)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in collectors:
        registry.register(collector)
    try:
        server, _thread = start_http_server(port, settings.metrics_host, registry=registry)
    except OSError as exc:
        where = f"{settings.metrics_host}:{port}"
        setting = f"{service.upper()}_METRICS_PORT"
        message = f"taskmgr {service}: cannot serve metrics on {where} ({exc.strerror}): set {setting}"
        raise SystemExit(message) from None
    return server.server_port
