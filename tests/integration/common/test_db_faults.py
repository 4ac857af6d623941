"""A database that is away is UNAVAILABLE with RetryInfo; a lost connection before COMMIT
costs one more run of the unit of work, never a failed call; after COMMIT, never a re-run.

Each test serves one public taskmgr method (GetJwks) through the real interceptor, over
real gRPC, with a handler that does database work on a real PostgreSQL or SQLite.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from concurrent import futures

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from common.db import Database
from common.errors import read_details
from common.interceptor import CallInterceptor
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.conftest import PG_ADMIN_URL
from tests.support.local import free_port

Work = Callable[[Database], None]


class OneMethod(user_service_pb2_grpc.UserServiceServicer):
    def __init__(self, database: Database, work: Work) -> None:
        self.database, self.work, self.runs = database, work, 0

    def GetJwks(self, request, context):  # noqa: ANN001, N802
        self.runs += 1
        self.work(self.database)
        return user_service_pb2.Jwks()


@pytest.fixture
def serve():
    started = []

    def start(database: Database, work: Work):
        servicer = OneMethod(database, work)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor(verifier=None)]
        )
        user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")  # no client retries: the server's own
        started.append((server, channel, database))
        call = user_service_pb2_grpc.UserServiceStub(channel).GetJwks
        return servicer, lambda: call(user_service_pb2.GetJwksRequest(), timeout=10)

    yield start
    for server, channel, database in started:
        channel.close()
        server.stop(0)
        database.dispose()


def unavailable(call) -> float | None:  # noqa: ANN001
    """Calls, expects UNAVAILABLE, returns its RetryInfo delay."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    return read_details(rpc_status.from_call(caught.value)).retry_after


def select_one(database: Database) -> None:
    with database.read() as session:
        session.execute(text("SELECT 1")).scalar_one()


def kill_own_connection(session: Session) -> None:
    session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


# PostgreSQL


@pytest.mark.postgres
def test_a_restart_leaves_stale_pooled_connections_and_no_call_fails(pg_url, serve):
    database = Database(pg_url, pool_size=2)
    servicer, call = serve(database, select_one)
    call()  # one pooled connection
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # what a restart does to every pooled connection
        ended = connection.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :name"),
            {"name": make_url(pg_url).database},
        ).scalar_one()
    admin.dispose()
    assert ended >= 1
    servicer.runs = 0

    call()

    assert servicer.runs == 2  # the stale connection failed, the second run used a new one


@pytest.mark.postgres
def test_a_connection_lost_before_commit_is_run_again(pg_url, serve):
    database = Database(pg_url, pool_size=2)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (n int)"))

    def insert_then_lose_connection_once(db: Database) -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            if servicer.runs == 1:
                kill_own_connection(session)  # 57P01 before COMMIT: the insert is rolled back

    servicer, call = serve(database, insert_then_lose_connection_once)
    call()

    assert servicer.runs == 2
    with database.read() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


@pytest.mark.postgres
def test_after_a_commit_a_lost_connection_is_not_run_again_and_is_unavailable(pg_url, serve):
    database = Database(pg_url, pool_size=2)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (n int)"))

    def commit_then_lose_connection(db: Database) -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
        with db.read() as session:
            kill_own_connection(session)

    servicer, call = serve(database, commit_then_lose_connection)
    assert unavailable(call) == 1.0

    assert servicer.runs == 1  # a re-run would insert a second row
    with database.read() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


@pytest.mark.postgres
def test_a_connection_lost_on_every_run_is_unavailable_after_one_rerun(pg_url, serve):
    def always_lose_connection(db: Database) -> None:
        with db.read() as session:
            kill_own_connection(session)

    servicer, call = serve(Database(pg_url, pool_size=2), always_lose_connection)

    assert unavailable(call) == 1.0
    assert servicer.runs == 2


@pytest.mark.postgres
def test_a_database_that_refuses_connections_is_unavailable(serve):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    servicer, call = serve(Database(url, pool_size=2), select_one)

    assert unavailable(call) == 1.0


@pytest.mark.postgres
def test_too_many_connections_is_unavailable(pg_url, serve):
    # SQLSTATE 53300, a member of class 53 "insufficient resources".
    role = f"tm_full_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    try:
        url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        servicer, call = serve(Database(url, pool_size=2), select_one)
        assert unavailable(call) == 1.0
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.mark.postgres
def test_a_bug_is_still_internal_not_unavailable(pg_url, serve):
    def bad_sql(db: Database) -> None:
        with db.read() as session:
            session.execute(text("SELECT * FROM no_such_table"))

    servicer, call = serve(Database(pg_url, pool_size=2), bad_sql)
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert servicer.runs == 1


def test_a_peer_service_that_is_away_is_unavailable(tmp_path, serve):
    # Any handler that calls another service which is down, without a word of its own.
    peer = grpc.insecure_channel(f"127.0.0.1:{free_port()}")

    def ask_the_peer(_db: Database) -> None:
        user_service_pb2_grpc.UserServiceStub(peer).GetUser(user_service_pb2.GetUserRequest(id=1), timeout=2)

    try:
        servicer, call = serve(Database(f"sqlite:///{tmp_path / 'x.db'}"), ask_the_peer)
        assert unavailable(call) == 1.0
    finally:
        peer.close()


# SQLite


def test_sqlite_locked_past_the_busy_timeout_is_unavailable(tmp_path, serve):
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", pool_size=1)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (n int)"))
    with database.engine.connect() as connection:  # the one pooled connection
        connection.exec_driver_sql("PRAGMA busy_timeout=50")  # 30 s in production; the rule is the same
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock

    def write_with_short_timeout(db: Database) -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))

    try:
        servicer, call = serve(database, write_with_short_timeout)
        assert unavailable(call) == 1.0
        assert servicer.runs == 1  # locked is not a disconnect: no re-run
    finally:
        holder.rollback()
        holder.close()


def test_sqlite_a_bug_is_still_internal(tmp_path, serve):
    def bad_sql(db: Database) -> None:
        with db.read() as session:
            session.execute(text("SELECT * FROM no_such_table"))

    servicer, call = serve(Database(f"sqlite:///{tmp_path / 'x.db'}"), bad_sql)
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INTERNAL
