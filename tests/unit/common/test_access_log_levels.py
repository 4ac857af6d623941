"""The services' per-call access log (common.interceptor): a failed call at INFO, a call
that succeeded only at DEBUG (through the edge it is in the edge's access log already)."""

from __future__ import annotations

import contextlib
import logging
from concurrent import futures

import grpc
import pytest

from common.errors import NotFound
from common.interceptor import CallInterceptor
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc


class Jwks(user_service_pb2_grpc.UserServiceServicer):
    fail = False

    def GetJwks(self, request, context):  # noqa: ANN001, N802 (a public method: no token needed)
        if self.fail:
            raise NotFound("NOTHING", "Nothing here.")
        return user_service_pb2.Jwks()


@pytest.fixture
def call():
    servicer = Jwks()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor(verifier=None)]
    )
    user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = user_service_pb2_grpc.UserServiceStub(channel)

    def run(fail: bool) -> None:
        servicer.fail = fail
        with contextlib.suppress(grpc.RpcError):
            stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=5)

    yield run
    channel.close()
    server.stop(0)


def access_records(caplog) -> list[logging.LogRecord]:  # noqa: ANN001
    return [record for record in caplog.records if record.name == "taskmgr.access"]


def test_a_call_that_succeeded_is_logged_at_debug_and_a_failed_one_at_info(call, caplog):
    caplog.set_level(logging.INFO, logger="taskmgr.access")
    call(fail=False)
    assert access_records(caplog) == []
    call(fail=True)
    [failed] = access_records(caplog)
    assert (failed.levelno, failed.code, failed.method) == (
        logging.INFO, "NOT_FOUND", "/taskmgr.user.v1.UserService/GetJwks",
    )  # fmt: skip
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="taskmgr.access")
    call(fail=False)
    [succeeded] = access_records(caplog)
    assert (succeeded.levelno, succeeded.code) == (logging.DEBUG, "OK")
    assert succeeded.duration_ms >= 0
