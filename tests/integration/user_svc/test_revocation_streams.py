"""WatchRevocations streams hold a server thread each: they are bounded (beyond
`max_watchers`, RESOURCE_EXHAUSTED) and end as soon as user_svc starts stopping, so an
open stream no longer holds its shutdown for the whole grace."""

from __future__ import annotations

import time

import grpc
import pytest

from common.db import Database
from common.errors import ResourceExhausted
from common.revocation import RevocationState
from taskmgr.user.v1 import user_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2_grpc
from tests.integration.user_svc.conftest import _settings
from tests.support.engines import ENGINES, database_url
from user_svc.revocations import Broadcaster
from user_svc.server import build


@pytest.mark.parametrize("engine", ENGINES)
def test_stopping_ends_the_open_streams_at_once(request, tmp_path, engine) -> None:  # noqa: ANN001
    settings = _settings(tmp_path, database_url(request, engine, tmp_path, "user_svc"))
    server = build(settings, 0).start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        metadata = [("x-internal-key", settings.secret("internal_key").decode())]
        stream = stub.WatchRevocations(pb.GetRevocationsRequest(), metadata=metadata)
        next(stream)  # open, holding a server thread
        started = time.monotonic()
        server.stop(grace=5)
        assert time.monotonic() - started < 1.0
        assert list(stream) == []  # ended by the server, not cut


@pytest.mark.parametrize("engine", ENGINES)
def test_watchers_beyond_the_bound_are_refused(request, tmp_path, engine) -> None:  # noqa: ANN001
    settings = _settings(tmp_path, database_url(request, engine, tmp_path, "user_svc"))
    build(settings, 0).stop(0)  # migrates
    database = Database(settings.database_url("user_svc"), pool_size=2)
    broadcaster = Broadcaster(database, RevocationState(), max_watchers=1).start()
    try:
        first = broadcaster.watch(lambda: True)
        next(first)
        with pytest.raises(ResourceExhausted):
            next(broadcaster.watch(lambda: True))
        first.close()  # a stream that ends frees its place
        next(broadcaster.watch(lambda: True))
    finally:
        broadcaster.stop()
        database.dispose()
