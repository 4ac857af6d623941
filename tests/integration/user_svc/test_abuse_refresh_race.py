"""Concurrent refreshes with one refresh token within the grace leave ONE live successor
(security.md, Tokens; RFC 9700 section 4.14.2), on PostgreSQL and SQLite alike."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from taskmgr.user.v1 import user_service_pb2 as pb

PARALLEL = 8


def _refresh(stub, token: str):  # noqa: ANN001
    try:
        return stub.RefreshToken(pb.RefreshTokenRequest(refresh=token)).refresh
    except grpc.RpcError as error:
        return error.code()


def test_parallel_refreshes_within_the_grace_get_the_same_successor(any_db_svc):
    client = any_db_svc.client
    user = client.verified_user()
    token = client.login(user.username).refresh
    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(lambda _: _refresh(client.stub, token), range(PARALLEL)))

    successors = {answer for answer in answers if isinstance(answer, str)}
    assert len(successors) == 1, answers  # one branch, however many raced
    # The one successor works once, and then the family has exactly one live token.
    (successor,) = successors
    newer = client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=successor)).refresh
    assert newer not in (successor, token)


def test_a_repeat_after_the_successor_moved_on_is_refused_not_branched(any_db_svc):
    client = any_db_svc.client
    user = client.verified_user()
    token = client.login(user.username).refresh
    successor = client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=token)).refresh
    client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=successor))  # the client moved on
    assert _refresh(client.stub, token) == grpc.StatusCode.UNAUTHENTICATED  # within the grace
