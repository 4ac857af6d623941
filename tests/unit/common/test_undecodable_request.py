"""A request that is not its message's protobuf encoding (garbage bytes, invalid UTF-8 in
a string field, a truncated field), sent straight to a service's gRPC port, is
INVALID_ARGUMENT (MALFORMED_REQUEST) after authentication, as any bad input: the caller
sent it, the service did nothing wrong. Before, gRPC's own deserialization failed first:
INTERNAL "Exception deserializing request!" for anybody, token or not, and an ERROR
record with a full traceback in the service's log per call (a stranger's log flood)."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
import pytest
from grpc_status import rpc_status

from common.auth import JwksCache, TokenVerifier
from common.errors import read_details
from common.interceptor import CallInterceptor
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc

# LoginRequest (public) and LookupUserRequest (a token needed) take field 1 as a string.
GARBAGE = b"\xff\xff\xff\xff"
TRUNCATED = b"\x0a\x05ab"  # field 1, 5 bytes announced, 2 sent
INVALID_UTF8 = b"\x0a\x03\xff\xfe\xfd"  # field 1 as a string that is not UTF-8


class Servicer(user_service_pb2_grpc.UserServiceServicer):
    def GetJwks(self, request, context):  # noqa: ANN001, N802 (public)
        return user_service_pb2.Jwks()

    def Login(self, request, context):  # noqa: ANN001, N802 (public)
        return user_service_pb2.LoginResponse(access=request.username)

    def LookupUser(self, request, context):  # noqa: ANN001, N802 (needs a token)
        return user_service_pb2.User(username=request.username)


@pytest.fixture
def channel():
    verifier = TokenVerifier(JwksCache(lambda: []), issuer="taskmgr", audience="taskmgr")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor(verifier=verifier)]
    )
    user_service_pb2_grpc.add_UserServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(0)


def _raw(channel, method: str, payload: bytes) -> grpc.RpcError:
    call = channel.unary_unary(
        f"/taskmgr.user.v1.UserService/{method}",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(payload, timeout=5)
    return raised.value


@pytest.mark.parametrize("payload", [GARBAGE, TRUNCATED, INVALID_UTF8], ids=["garbage", "truncated", "utf8"])
def test_an_undecodable_request_is_invalid_argument_and_no_error_in_the_log(channel, caplog, payload):
    caplog.set_level(logging.INFO)

    error = _raw(channel, "Login", payload)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert read_details(rpc_status.from_call(error)).reason == "MALFORMED_REQUEST"
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_without_a_token_an_undecodable_request_is_refused_for_the_token_first(channel):
    error = _raw(channel, "LookupUser", INVALID_UTF8)

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert read_details(rpc_status.from_call(error)).reason == "TOKEN_MISSING"


def test_a_request_that_decodes_is_served_as_before(channel):
    stub = user_service_pb2_grpc.UserServiceStub(channel)

    assert stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=5) == user_service_pb2.Jwks()
    login = user_service_pb2.LoginRequest(username="\u00e9t\u00e9", password="p" * 12)
    assert stub.Login(login, timeout=5).access == "\u00e9t\u00e9"
