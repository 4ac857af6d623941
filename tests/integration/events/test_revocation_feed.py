"""The RabbitMQ revocation feed learns what it missed when its connection comes back:
user_svc here publishes nowhere (its relay's broker is unreachable), so a logout can
reach the feed only through the snapshot it takes after binding its new queue. The
broker closes the feed's connection (rabbitmqctl close_connection), as a broker restart
or a network cut would."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import grpc
import pytest

from common.db import Database
from common.revocation import AmqpRevocationFeed, RevocationState, revocations_from_user_svc
from common.settings import Settings
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import Client, Outboxes
from tests.support.engines import database_url
from user_svc.server import build as build_user_svc

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
pytestmark = [
    pytest.mark.slow,  # rabbitmqctl starts an Erlang VM per call
    pytest.mark.skipif(not shutil.which(RABBITMQCTL), reason="needs rabbitmqctl"),
]


@pytest.fixture
def users(request, tmp_path) -> Iterator[tuple[Client, grpc.Channel, bytes]]:  # noqa: ANN001
    settings = Settings(
        environment="test", var_dir=tmp_path,
        user_svc_database_url=database_url(request, "postgresql", tmp_path, "user_svc"),
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1,
        amqp_url="amqp://guest:guest@127.0.0.1:1/",  # its events go nowhere
    )
    server = build_user_svc(settings, 0).start()
    database = Database(settings.user_svc_database_url, pool_size=1)
    key = settings.secret("internal_key")
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Client(channel, Outboxes(database), key), channel, key
    database.dispose()
    server.stop(0)


def close_connection_named(name: str) -> None:
    listing = subprocess.run(
        [RABBITMQCTL, "-q", "list_connections", "pid", "client_properties"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    [pid] = [line.split("\t", 1)[0] for line in listing.splitlines() if name in line]
    subprocess.run([RABBITMQCTL, "close_connection", pid, "test: connection lost"], check=True, timeout=30)


def eventually(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_reconnected_feed_learns_what_it_missed_from_the_snapshot(users, rabbitmq) -> None:  # noqa: ANN001
    client, channel, internal_key = users
    state = RevocationState()
    snapshot = revocations_from_user_svc(lambda: channel, internal_key=internal_key, deadline=2.0)
    exchange = rabbitmq.name("events")
    rabbitmq.exchanges.add(exchange)
    feed = AmqpRevocationFeed(state, rabbitmq.url, exchange=exchange, snapshot=snapshot).start()
    try:
        assert eventually(lambda: state.ready, 5)
        user = client.verified_user()
        login = client.login(user.username)
        client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=login.refresh))
        [revoked] = client.stub.GetRevocations(
            pb.GetRevocationsRequest(), metadata=[("x-internal-key", internal_key.decode())]
        ).sessions
        known = lambda: state.is_revoked(user_id=user.id, session_id=revoked.session_id, epoch=0)  # noqa: E731
        time.sleep(0.5)
        assert not known()  # no event can bring it
        close_connection_named(feed.connection_name)
        assert eventually(known, 5)
    finally:
        feed.stop()
