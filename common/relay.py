"""The outbox relay: a background thread that delivers a service's outbox rows.

It reads pending rows in id order, in batches, hands each batch to a transport and
deletes the rows the transport confirmed (a row may hold a one-time code, so nothing
is kept once delivered). Two transports:

- RabbitMQ (`AMQP_URL` set): `common.amqp.ConfirmingPublisher`, publisher confirms with
  the whole batch in flight, `mandatory` (a returned message is not delivered).
- Embedded default (no `AMQP_URL`): notify_svc's internal `DeliverEvents` method over
  gRPC, a batch per call, authenticated by the internal key.

It is woken right after every commit that wrote an outbox row (a session event on the
service's sessions, so service code need not remember), relays at most one batch every
`linger` seconds (50 ms), polls slowly as a safety net, and backs off exponentially with
jitter while the destination is away, capped at `backoff_max` (1 s), so it resumes
within about a second of the destination's (or the database's) return. A user request
never waits for it, so a broker outage never fails one.

The linger is Kafka's `linger.ms` and Nagle's reason: a batch costs a transaction, a
locking SELECT, a DELETE and a delivery call whatever its size, so a relay woken per
commit paid that per event. Under 340 creates/s it was 28% of task_svc's CPU (py-spy,
bench/perf_vs_floor.py --paths create), with one or two events a batch. Now a commit
after a quiet moment is relayed at once, and under load the commits of up to 50 ms
share a batch (an event waits at most that much more).

Replicas and a service's several processes (`*_PROCESSES`, each with its own relay): on
PostgreSQL a batch is claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so two relays
never publish the same row at once. On SQLite (no row locks; one machine) the relays of
one database file take turns under an exclusive lock on a file beside it (flock(2)), held
from reading a batch until its delivered rows are deleted, so a batch is never read by
a second relay before the first has deleted it. Delivery is still at least once (a
relay can die between the confirm and the delete); consumers deduplicate on event id.
"""

from __future__ import annotations

import fcntl
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, Protocol

import grpc
from sqlalchemy import BigInteger, Delete, Engine, Select, Table, any_, bindparam, delete, event, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from common.amqp import ConfirmingPublisher
from common.db import RESULT_UNREAD, Database, execute_unread, fetch_in_transaction
from common.grpc_client import make_channel
from common.metrics import outbox_events
from common.outbox import WROTE_OUTBOX, OutboxMixin, event_of
from common.settings import Settings
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc

log = logging.getLogger(__name__)

_DELIVER_BATCH_DEADLINE = 60.0  # seconds


class Transport(Protocol):
    def deliver(self, events: Sequence[events_pb2.Event]) -> list[bool]:
        """For each event, whether it was delivered; ConnectionError when unreachable."""

    def close(self) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        outbox_model: type[OutboxMixin],
        transport: Transport,
        *,
        batch_size: int = 200,
        poll_interval: float = 5.0,
        backoff_base: float = 0.2,
        backoff_max: float = 1.0,
        linger: float = 0.05,
    ) -> None:
        self._database = database
        self._model = outbox_model
        self._transport = transport
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._linger = linger
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._listeners = [  # OutboxMixin.record notes the rows it writes (WROTE_OUTBOX)
            ("after_commit", self._wake_if_outbox_rows),
            ("after_rollback", self._forget_outbox_rows),
        ]

    def start(self) -> OutboxRelay:
        for name, listener in self._listeners:
            event.listen(self._database.sessions, name, listener)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self, timeout: float = 10.0) -> None:
        for name, listener in self._listeners:
            event.remove(self._database.sessions, name, listener)
        self._stopping.set()
        self._wakeup.set()
        self._thread.join(timeout)
        self._transport.close()

    def drain(self) -> None:
        """Delivers every pending row; ConnectionError if some could not be delivered."""
        while not self._stopping.is_set() and self._relay_batch() == self._batch_size:
            pass

    def _run(self) -> None:
        failures = 0
        next_batch = 0.0  # monotonic time before which no batch starts (the linger)
        while not self._stopping.is_set():
            early = next_batch - time.monotonic()
            if early > 0 and self._stopping.wait(early):  # commits meanwhile join this batch
                break
            next_batch = time.monotonic() + self._linger
            self._wakeup.clear()
            try:
                self.drain()
                failures = 0
            except Exception as exc:  # the broker or the database is away: back off, keep the rows
                failures += 1
                delay = self._backoff(failures)
                log.warning("outbox relay: %s; retrying in %.2fs", exc, delay, exc_info=failures == 1)
                # Commits do not cut a backoff short: they would hammer a broker that is away.
                self._stopping.wait(delay)
                continue
            self._wakeup.wait(self._poll_interval)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** min(failures, 30))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)

    def _relay_batch(self) -> int:
        table = self._model.__table__
        if self._database.engine.dialect.name == "sqlite":
            # No row locks, and a writing transaction holds the database's one write lock
            # (common.db): delivering inside one would stall every request of the service
            # for as long as the destination takes. So: read, deliver, then delete, with
            # the other relays of the file (other processes) held off meanwhile.
            with _relays_take_turns(self._database.engine):
                with self._database.read() as session:
                    rows = session.execute(_pending(table), {"limit": self._batch_size}).all()
                done = self._deliver(rows)
                if done:
                    with self._database.transaction() as session:
                        session.execute(delete(table).where(table.c.id.in_(done)))
        else:
            # Two round trips (common.db, pipelined): BEGIN with the SELECT, the DELETE
            # with the COMMIT. The rows stay locked until the COMMIT. Core rows, each
            # statement built once (an ORM load of the batch and a new DELETE per batch
            # cost 2.8 ms of CPU for 15 events).
            with self._database.transaction(pipelined=True) as session:
                rows = fetch_in_transaction(session, _claimed(table), {"limit": self._batch_size})
                done = self._deliver(rows)
                if done:
                    execute_unread(session, _delete_claimed(table), {"ids": done})
        if len(done) < len(rows):
            raise ConnectionError(f"{len(rows) - len(done)} of {len(rows)} events were not delivered")
        return len(rows)

    def _deliver(self, rows: Sequence[Any]) -> list[int]:
        """The ids of the rows the transport confirmed."""
        if not rows:
            return []
        counter = outbox_events()
        service = self._model.__module__.partition(".")[0]  # user_svc.models -> user_svc
        try:
            delivered = self._transport.deliver([event_of(row) for row in rows])
        except Exception:
            counter.labels(service, "failed").inc(len(rows))
            raise
        done = [row.id for row, ok in zip(rows, delivered, strict=True) if ok]
        counter.labels(service, "published").inc(len(done))
        if len(done) < len(rows):
            counter.labels(service, "failed").inc(len(rows) - len(done))
        return done

    def _wake_if_outbox_rows(self, session: Session) -> None:
        if session.info.pop(WROTE_OUTBOX, False):
            self.wake()

    def _forget_outbox_rows(self, session: Session) -> None:
        session.info.pop(WROTE_OUTBOX, None)


@cache
def _pending(table: Table) -> Select:
    """The oldest `limit` rows of an outbox."""
    return select(table.c.id, table.c.payload).order_by(table.c.id).limit(bindparam("limit"))


@cache
def _claimed(table: Table) -> Select:
    """The oldest `limit` rows no other relay holds, locked (PostgreSQL)."""
    return _pending(table).with_for_update(skip_locked=True)


@cache
def _delete_claimed(table: Table) -> Delete:
    """Deletes the rows whose ids are in the array `ids` (PostgreSQL: one statement for
    any number of ids, unlike an IN list)."""
    ids = bindparam("ids", type_=postgresql.ARRAY(BigInteger))
    return delete(table).where(table.c.id == any_(ids)).execution_options(**{RESULT_UNREAD: True})


@contextmanager
def _relays_take_turns(engine: Engine) -> Iterator[None]:
    """Holds the exclusive lock of the relays of a SQLite file (`<file>.relay-lock`,
    flock(2): released by the kernel if the process dies). An in-memory database has
    one process, and nothing to lock."""
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    with open(f"{path}.relay-lock", "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class NotifyServiceTransport:
    """The embedded default: a batch goes to notify_svc's internal DeliverEvents in one
    call, answered after notify_svc's log commit (all handled, or UNAVAILABLE and none)."""

    def __init__(self, address: str, *, internal_key: bytes, deadline: float) -> None:
        self._channel = make_channel(address)
        self._stub = notify_service_pb2_grpc.NotificationServiceStub(self._channel)
        self._metadata = [("x-internal-key", internal_key.decode())]
        self._deadline = deadline

    def deliver(self, events: Sequence[events_pb2.Event]) -> list[bool]:
        try:
            answer = self._stub.DeliverEvents(
                notify_service_pb2.DeliverEventsRequest(events=events),
                timeout=self._deadline, metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise ConnectionError(f"notify_svc: {exc.code().name} {exc.details()}") from exc
        # Refused as malformed: retrying cannot help, and without a broker there is no
        # dead-letter queue, so it is logged and dropped with the rest of the batch.
        for refused in answer.refused:
            log.error("notify_svc refused event %s (%s): dropped", events[refused.index].id, refused.reason)
        return [True] * len(events)

    def close(self) -> None:
        self._channel.close()


def default_transport(settings: Settings) -> Transport:
    if settings.amqp_url:
        return ConfirmingPublisher(
            settings.amqp_url,
            exchange=settings.events_exchange,
            queue=settings.notify_queue,
            delivery_limit=settings.notify_delivery_limit,
        )
    return NotifyServiceTransport(
        settings.notify_svc_addr,
        internal_key=settings.secret("internal_key"),
        # A batch is answered after its emails (each retried with backoff while the mail
        # server is away); a retry sooner would only wait on the first call's claims.
        deadline=max(settings.grpc_call_deadline, _DELIVER_BATCH_DEADLINE),
    )


def start_outbox_relay(
    database: Database,
    outbox_model: type[OutboxMixin],
    settings: Settings,
    *,
    transport: Transport | None = None,
    **tuning: float,
) -> OutboxRelay:
    """Starts the relay of a service's outbox; register `relay.stop` with the server's on_stop."""
    relay = OutboxRelay(database, outbox_model, transport or default_transport(settings), **tuning)
    return relay.start()
