"""common.db's units of work keep a check-then-act whole on both engines: on SQLite a
writing transaction begins IMMEDIATE (one writer at a time, from its first read), a read
is one snapshot, and `serialize_on` orders check-then-acts that have no row to lock. A
pipelined transaction is all or nothing like any other."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import column, table, text, update
from sqlalchemy.exc import IntegrityError

from common.db import RESULT_UNREAD, Database, migrate, serialize_on
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

REPO = Path(__file__).resolve().parents[3]
THREADS = 12


@pytest.fixture(params=ENGINES)
def database(request, tmp_path):
    db = Database(database_url(request, request.param, tmp_path, "tx"), pool_size=THREADS)
    with db.transaction() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
        session.execute(text("CREATE TABLE tickets (holder INTEGER NOT NULL)"))
    yield db
    db.dispose()


def _at_once(work, count: int = THREADS) -> None:  # noqa: ANN001
    start = threading.Barrier(count)

    def run(n: int) -> None:
        start.wait()
        work(n)

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(run, range(count)))


def test_a_budget_checked_then_spent_in_parallel_is_never_overspent(database: Database) -> None:
    budget = 5

    def take_a_ticket(n: int) -> None:
        with database.transaction() as session:
            serialize_on(session, "tickets")
            if session.execute(text("SELECT count(*) FROM tickets")).scalar() < budget:
                session.execute(text("INSERT INTO tickets VALUES (:n)"), {"n": n})

    _at_once(take_a_ticket)
    with database.read() as session:
        assert session.execute(text("SELECT count(*) FROM tickets")).scalar() == budget


def test_on_sqlite_a_writing_transaction_holds_from_its_first_read(tmp_path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}", pool_size=THREADS)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))

    def increment_in_python(_n: int) -> None:
        with database.transaction() as session:
            n = session.execute(text("SELECT n FROM counter")).scalar()
            session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    try:
        _at_once(increment_in_python)
        with database.read() as session:
            assert session.execute(text("SELECT n FROM counter")).scalar() == THREADS  # no update lost
    finally:
        database.dispose()


def test_a_read_is_one_snapshot_and_blocks_no_writer(database: Database) -> None:
    with database.read() as reader:
        before = reader.execute(text("SELECT n FROM counter")).scalar()
        with database.transaction() as writer:  # would wait (and time out) if the read blocked it
            writer.execute(text("UPDATE counter SET n = n + 1"))
        if database.engine.dialect.name == "sqlite":
            assert reader.execute(text("SELECT n FROM counter")).scalar() == before
    with database.read() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar() == before + 1


def test_serialize_on_refuses_a_sqlite_session_that_is_no_writing_transaction(tmp_path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with database.read() as session, pytest.raises(RuntimeError):
            serialize_on(session, "anything")
    finally:
        database.dispose()


@pytest.mark.parametrize("service", ["user_svc", "task_svc", "notify_svc"])
def test_processes_migrating_one_sqlite_file_at_once_all_start(tmp_path, service: str) -> None:
    databases = [Database(f"sqlite:///{tmp_path / 'shared.db'}", pool_size=1) for _ in range(3)]
    try:
        _at_once(lambda n: migrate(databases[n], REPO / service / "migrations"), count=len(databases))
        with databases[0].read() as session:
            assert session.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        for database in databases:
            database.dispose()


def test_a_write_in_a_read_is_refused_on_both_engines(database: Database) -> None:
    with database.read() as session, pytest.raises(RuntimeError, match="Database.transaction"):
        session.execute(update(table("counter", column("n"))).values(n=99))
    with database.read() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar() == 0


def test_a_pipelined_transaction_raises_an_unread_statement_s_error_keeps_nothing(database: Database) -> None:
    unread = text("INSERT INTO counter VALUES (:n)").execution_options(**{RESULT_UNREAD: True})
    # On PostgreSQL the error comes from the COMMIT, which the statements went with.
    with pytest.raises(IntegrityError), database.transaction(pipelined=True) as session:
        session.execute(unread, {"n": 41})
        session.execute(unread, {"n": None})  # NOT NULL
    for _ in range(2):  # the pooled connection again: out of pipeline mode, its own transactions
        with pytest.raises(RuntimeError), database.transaction() as session:
            session.execute(text("INSERT INTO counter VALUES (40)"))
            raise RuntimeError("rolled back")
    with database.transaction(pipelined=True) as session:
        session.execute(unread, {"n": 42})
        # A statement whose result is read is answered at once, after what waited.
        assert session.execute(text("SELECT count(*) FROM counter")).scalar() == 2
    with database.read() as session:
        assert session.execute(text("SELECT n FROM counter ORDER BY n")).scalars().all() == [0, 42]


class SlowTransport:
    """Takes `seconds` to deliver each batch (a broker or notify_svc that is slow)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.delivering = threading.Event()
        self.delivered: list[str] = []

    def deliver(self, events):  # noqa: ANN001, ANN201
        self.delivering.set()
        time.sleep(self.seconds)
        self.delivered += [event.id for event in events]
        return [True] * len(events)

    def close(self) -> None:
        pass


def test_on_sqlite_a_slow_delivery_of_the_outbox_holds_up_no_write(tmp_path) -> None:
    database = producer_database(f"sqlite:///{tmp_path / 'producer.db'}")
    transport = SlowTransport(1.5)
    relay = OutboxRelay(database, ProducerOutbox, transport, poll_interval=60.0).start()
    try:
        [first] = record(database, [user_registered(1)])
        assert transport.delivering.wait(5)
        started = time.monotonic()
        record(database, [user_registered(2)])  # a request's write, while the relay delivers
        assert time.monotonic() - started < 1.0
        wait_for(lambda: pending(database) == 0)
        assert transport.delivered[0] == first.id
    finally:
        relay.stop()
        database.dispose()
