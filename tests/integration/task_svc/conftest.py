"""task_svc over real gRPC on a fresh database of each engine (every test runs on
PostgreSQL and on SQLite), with tokens from a test issuer and a small fake UserService
(a gRPC server of our own on port 0) that answers GetUser for the assignee checks and
remembers how it was called."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from common.db import Database
from common.settings import Settings
from task_svc.server import build
from taskmgr.task.v1 import task_service_pb2_grpc
from taskmgr.user.v1 import user_service_pb2_grpc
from tests.integration.task_svc.support import KNOWN_USERS, STAFF, FakeUserService, RunningFake
from tests.support.engines import ENGINES, database_url
from tests.support.tokens import TestIssuer


@pytest.fixture
def fake_users() -> Iterator[RunningFake]:
    servicer = FakeUserService(dict(KNOWN_USERS))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield RunningFake(servicer, server, port)
    server.stop(0)


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def settings(request, engine: str, tmp_path, fake_users) -> Settings:
    return Settings(
        environment="test", var_dir=tmp_path,
        task_svc_database_url=database_url(request, engine, tmp_path, "task_svc"),
        user_svc_addr=f"127.0.0.1:{fake_users.port}", grpc_call_deadline=2.0, db_pool_size=8,
        # Nothing listens there, so the outbox relay delivers nothing and the tests can
        # read every event the service recorded.
        notify_svc_addr="127.0.0.1:1",
    )


@pytest.fixture
def server(settings: Settings, issuer: TestIssuer):
    # The verifier is the test issuer's; the user directory is the default one, over
    # gRPC to the fake user_svc, so forwarding and deadlines are exercised for real.
    running = build(settings, 0, verifier=issuer.verifier()).start()
    yield running
    running.stop(0)


@pytest.fixture
def stub(server) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield task_service_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture
def database(settings: Settings, server) -> Iterator[Database]:
    """Direct access to task_svc's tables (after the server has migrated them)."""
    db = Database(settings.task_svc_database_url, pool_size=2)
    yield db
    db.dispose()


@pytest.fixture
def as_user(issuer: TestIssuer):
    def metadata(user_id: int) -> list[tuple[str, str]]:
        return issuer.metadata(user_id, is_staff=user_id == STAFF)

    return metadata


