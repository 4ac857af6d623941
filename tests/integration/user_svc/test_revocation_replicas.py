"""Two user_svc replicas (or processes) on one database, PostgreSQL and SQLite: a
revocation committed by one reaches the other's verifier and its WatchRevocations
streams within a second (its log poll), also one whose transaction commits after later
ones (ids and creation times are not commit order)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from common.db import Database
from common.revocation import RevocationState
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.conftest import RunningUserSvc, _settings
from tests.integration.user_svc.support import Client, FakeClock, Outboxes, bearer
from tests.support.engines import ENGINES, database_url
from user_svc import revocations
from user_svc.revocations import Broadcaster
from user_svc.server import build


@pytest.fixture(params=ENGINES)
def replicas(request, tmp_path) -> Iterator[tuple[RunningUserSvc, RunningUserSvc]]:  # noqa: ANN001
    settings = _settings(tmp_path, database_url(request, request.param, tmp_path, "user_svc"))
    running, stops = [], []
    database = Database(settings.database_url("user_svc"), pool_size=2)
    for _ in range(2):
        server = build(settings, 0).start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        client = Client(channel, Outboxes(database), settings.secret("internal_key"))
        running.append(RunningUserSvc(server, settings, FakeClock(), client))
        stops += [channel.close, lambda server=server: server.stop(0)]
    yield running[0], running[1]
    for stop in stops:
        stop()
    database.dispose()


def refused_within(client: Client, access: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(access))
        except grpc.RpcError as error:
            return error.code() is grpc.StatusCode.UNAUTHENTICATED
        time.sleep(0.01)
    return False


def eventually(condition, seconds: float = 1.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_logout_at_one_replica_is_refused_at_the_other_and_streamed_by_it(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    user = a.client.verified_user()
    login = a.client.login(user.username)
    b.client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(login.access))
    stream = b.client.stub.WatchRevocations(
        pb.GetRevocationsRequest(), metadata=[("x-internal-key", b.client.internal_key.decode())]
    )
    next(stream)  # the snapshot
    streamed = threading.Event()

    def follow() -> None:
        for message in stream:
            if any(s.user_id == user.id for s in message.sessions):
                streamed.set()
                return

    threading.Thread(target=follow, daemon=True).start()
    a.client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=login.refresh))
    assert refused_within(b.client, login.access, 1.0)
    assert streamed.wait(1.0)
    stream.cancel()


def test_a_revocation_committed_after_later_ones_is_still_seen(request, tmp_path) -> None:  # noqa: ANN001
    # PostgreSQL: transactions commit in parallel (SQLite's one writer commits in order).
    url = database_url(request, "postgresql", tmp_path, "user_svc")
    settings = _settings(tmp_path, url)
    build(settings, 0).stop(0)  # migrates the database
    writer, reader = Database(url, pool_size=2), Database(url, pool_size=2)
    state = RevocationState()
    follower = Broadcaster(reader, state, poll_interval=0.05).start()
    try:
        slow_started, slow_may_commit = threading.Event(), threading.Event()

        def slow() -> None:
            with writer.transaction() as session:
                revocations.revoke_session(session, 1, "slow-session", "logout", 900)
                session.flush()
                slow_started.set()
                slow_may_commit.wait(5)

        thread = threading.Thread(target=slow)
        thread.start()
        slow_started.wait(5)
        with writer.transaction() as session:  # created after the slow one, committed first
            revocations.revoke_session(session, 2, "fast-session", "logout", 900)
        assert eventually(lambda: state.is_revoked(user_id=2, session_id="fast-session", epoch=0))
        time.sleep(0.3)  # several polls pass the slow row's place
        slow_may_commit.set()
        thread.join()
        assert eventually(lambda: state.is_revoked(user_id=1, session_id="slow-session", epoch=0))
    finally:
        follower.stop()
        writer.dispose()
        reader.dispose()
