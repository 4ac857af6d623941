"""Codes that strangers cannot turn against the owner, and an honest answer within the
cooldown (user_svc/otp.py, docs/security.md), on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import failure


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def verify(client, email: str, code: str):  # noqa: ANN001, ANN201
    return client.stub.VerifyOtp(pb.VerifyOtpRequest(email=email, otp_code=code))


def resend(client, email: str) -> str:  # noqa: ANN001
    detail = client.stub.ResendOtp(pb.ResendOtpRequest(email=email)).detail
    client.outbox.settle()
    return detail


def test_wrong_codes_sent_before_the_owner_registers_do_not_block_them(any_db_svc):
    client = any_db_svc.client
    username = f"u{uuid.uuid4().hex[:10]}"
    email = f"{username}@example.com"
    for _ in range(25):  # a stranger, before the owner even signs up
        assert failure(verify, client, email, "123456").reason == "INVALID_OTP"
    client.register(username)
    verify(client, email, client.outbox.last_code(email))


def test_a_new_code_opens_a_new_budget(any_db_svc):
    svc, client = any_db_svc, any_db_svc.client
    _, email = client.register()
    for _ in range(2):  # ten wrong tries over two codes: each code burnt, the address is not
        code = client.outbox.last_code(email)
        for _ in range(5):
            assert failure(verify, client, email, wrong(code)).reason == "INVALID_OTP"
        assert failure(verify, client, email, code).reason == "INVALID_OTP"  # burnt
        svc.clock.advance(seconds=61)
        resend(client, email)
    verify(client, email, client.outbox.last_code(email))


def test_within_the_cooldown_the_answer_says_no_code_was_sent_for_any_address(any_db_svc):
    svc, client = any_db_svc, any_db_svc.client
    _, unverified = client.register()
    verified = client.verified_user().email
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    firsts = {resend(client, email) for email in (unverified, verified, unknown)}
    assert len(firsts) == 1  # the same 202 for all three
    svc.clock.advance(seconds=20)
    errors = [failure(resend, client, email) for email in (unverified, verified, unknown)]
    assert {(e.code, e.reason) for e in errors} == {
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "CODE_REQUESTED_RECENTLY")
    }
    # 40 s of the 60 s cooldown remain, less the real seconds the calls took (the clock runs on)
    assert all(37 <= e.retry_after <= 40 for e in errors), [e.retry_after for e in errors]
    assert len(client.outbox.codes(unverified)) == 2  # registering, then the one resend
    svc.clock.advance(seconds=41)
    resend(client, unverified)
    assert len(client.outbox.codes(unverified)) == 3


def test_at_most_five_requests_an_hour_per_address(any_db_svc):
    svc, client = any_db_svc, any_db_svc.client
    _, email = client.register()
    for _ in range(5):
        svc.clock.advance(seconds=61)
        resend(client, email)
    svc.clock.advance(seconds=61)
    capped = failure(resend, client, email)
    assert capped.reason == "CODE_REQUESTED_RECENTLY"
    assert 3600 - 6 * 61 - 2 <= capped.retry_after <= 3600 - 5 * 61  # until the first leaves the hour
    assert len(client.outbox.codes(email)) == 6  # registering, then five


def test_parallel_requests_for_one_address_send_one_code(any_db_svc):
    client = any_db_svc.client
    _, email = client.register()
    any_db_svc.clock.advance(seconds=61)

    def ask(_: int):  # noqa: ANN202
        try:
            return client.stub.ResendOtp(pb.ResendOtpRequest(email=email)).detail
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    client.outbox.settle()
    assert sum(isinstance(answer, str) for answer in answers) == 1, answers
    assert answers.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 7
    assert len(client.outbox.codes(email)) == 2
