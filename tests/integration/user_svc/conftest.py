"""user_svc over real gRPC (port 0), on a fresh PostgreSQL database and on a SQLite file
(every test runs on both engines), migrated from empty, with a clock the tests control
(it only moves forward) and a cheap argon2 cost."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from common.db import Database
from common.grpc_server import GrpcServer
from common.settings import Settings
from tests.integration.user_svc.support import Client, FakeClock, Outboxes, generous_rate_limits
from tests.support.engines import ENGINES, database_url
from user_svc.server import build


@dataclass
class RunningUserSvc:
    server: GrpcServer
    settings: Settings
    clock: FakeClock
    client: Client

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


# Nothing listens on port 1: the outbox relay cannot deliver (it retries in the
# background), so the events stay in the outbox for the tests to read.
UNREACHABLE = "127.0.0.1:1"


def _settings(tmp_path, database_url: str) -> Settings:
    return Settings(
        environment="test", var_dir=tmp_path, user_svc_database_url=database_url,
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1, db_pool_size=4,
        notify_svc_addr=UNREACHABLE, amqp_url="", rate_limits=generous_rate_limits(),
    )


def _run(settings: Settings) -> Iterator[RunningUserSvc]:
    clock = FakeClock()
    server = build(settings, 0, clock=clock).start()
    database = Database(settings.database_url("user_svc"), pool_size=2)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        client = Client(channel, Outboxes(database), settings.secret("internal_key"))
        yield RunningUserSvc(server, settings, clock, client)
    database.dispose()
    server.stop(0)


@pytest.fixture(scope="module", params=ENGINES)
def svc(request, tmp_path_factory) -> Iterator[RunningUserSvc]:
    """On a fresh database of each engine, shared by a module's tests (each makes its own
    users, addresses and client IPs, so they do not meet)."""
    directory = tmp_path_factory.mktemp("user_svc")
    yield from _run(_settings(directory, database_url(request, request.param, directory, "user_svc")))


@pytest.fixture(params=ENGINES)
def any_db_svc(request, tmp_path) -> Iterator[RunningUserSvc]:
    """A service of its own for one test, on each engine."""
    yield from _run(_settings(tmp_path, database_url(request, request.param, tmp_path, "user_svc")))


@pytest.fixture(scope="module")
def client(svc: RunningUserSvc) -> Client:
    return svc.client
