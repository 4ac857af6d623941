"""Verification and reset codes: one INVALID_OTP for every bad code, the per-code
limit, no enumeration (the rules against abuse: test_abuse_codes.py)."""

import uuid

import grpc
import pytest

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, failure


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def verify(client, email: str, code: str):  # noqa: ANN201
    return client.stub.VerifyOtp(pb.VerifyOtpRequest(email=email, otp_code=code))


def resend(client, email: str) -> str:
    detail = client.stub.ResendOtp(pb.ResendOtpRequest(email=email)).detail
    client.outbox.settle()  # the code is sent apart from the request
    return detail


def forgot(client, email: str) -> str:
    detail = client.stub.ForgotPassword(pb.ForgotPasswordRequest(email=email)).detail
    client.outbox.settle()
    return detail


def assert_invalid_otp(error) -> None:
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_OTP")


def test_wrong_expired_used_and_unknown_codes_are_the_same_error(svc, client):
    _, email = client.register()
    code = client.outbox.last_code(email)
    wrong_code = failure(verify, client, email, wrong(code))
    unknown_address = failure(verify, client, f"nobody-{uuid.uuid4().hex}@example.com", code)
    svc.clock.advance(minutes=10)
    expired = failure(verify, client, email, code)
    for error in (wrong_code, unknown_address, expired):
        assert_invalid_otp(error)
        assert error.fields == wrong_code.fields
    # A code that is not 6 digits breaks the contract's rule before any lookup: the same
    # answer for every address, so it tells nothing either.
    malformed = failure(verify, client, email, "12ab56")
    malformed_unknown = failure(verify, client, f"nobody-{uuid.uuid4().hex}@example.com", "12ab56")
    assert malformed == malformed_unknown
    assert (malformed.code, set(malformed.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"otp_code"})
    resend(client, email)
    verify(client, email, client.outbox.last_code(email))
    assert_invalid_otp(failure(verify, client, email, client.outbox.last_code(email)))  # used


def test_five_wrong_tries_burn_the_code(client):
    _, email = client.register()
    code = client.outbox.last_code(email)
    for _ in range(5):
        failure(verify, client, email, wrong(code))
    assert_invalid_otp(failure(verify, client, email, code))


def test_a_new_code_leaves_the_old_one_open_until_one_is_used(svc, client):
    # A request anybody can make must not cancel the code in the owner's mailbox (otp.py).
    _, email = client.register()
    old = client.outbox.last_code(email)
    svc.clock.advance(seconds=61)
    resend(client, email)
    new = client.outbox.last_code(email)
    assert len(client.outbox.codes(email)) == 2
    verify(client, email, old)
    # Using one ends the other. (Fails once in a million runs, when the two codes are equal.)
    assert_invalid_otp(failure(verify, client, email, new))


def test_forgot_password_answers_the_same_for_every_address(client):
    user = client.verified_user()
    registered = forgot(client, user.email)
    unknown = forgot(client, f"no-{uuid.uuid4().hex}@example.com")
    assert registered == unknown
    assert len(client.outbox.codes(user.email, reset=True)) == 1


def test_reset_codes_only_reset_and_verification_codes_only_verify(client):
    _, email = client.register()
    forgot(client, email)
    verify_code = client.outbox.last_code(email)
    reset_code = client.outbox.last_code(email, reset=True)
    # (Fails once in a million runs, when the two random codes happen to be equal.)
    reset = pb.ResetPasswordRequest(email=email, otp_code=verify_code, new_password="an entirely new secret")
    assert_invalid_otp(failure(client.stub.ResetPassword, reset))
    assert_invalid_otp(failure(verify, client, email, reset_code))
    verify(client, email, verify_code)


def test_reset_password_errors(client):
    user = client.verified_user()
    forgot(client, user.email)
    code = client.outbox.last_code(user.email, reset=True)

    def reset(otp_code: str, new_password: str):  # noqa: ANN202
        request = pb.ResetPasswordRequest(email=user.email, otp_code=otp_code, new_password=new_password)
        return client.stub.ResetPassword(request)

    assert_invalid_otp(failure(reset, wrong(code), "a perfectly fine passphrase"))
    weak = failure(reset, code, "password")
    assert (weak.reason, set(weak.fields)) == ("INVALID_ARGUMENT", {"new_password"})
    with_name = failure(reset, code, f"{user.username}-is-my-password")
    assert set(with_name.fields) == {"new_password"}
    reset(code, "a perfectly fine passphrase")  # the refused tries did not use the code up
    assert client.login(user.username, "a perfectly fine passphrase").access
    assert failure(client.login, user.username, PASSWORD).reason == "INVALID_CREDENTIALS"


@pytest.mark.parametrize("call", ["VerifyOtp", "ResendOtp", "ForgotPassword"])
def test_a_malformed_address_is_a_field_error(client, call):
    requests = {
        "VerifyOtp": pb.VerifyOtpRequest(email="x" * 300, otp_code="123456"),
        "ResendOtp": pb.ResendOtpRequest(email="no at sign"),
        "ForgotPassword": pb.ForgotPasswordRequest(email="a\x00@example.com"),
    }
    error = failure(getattr(client.stub, call), requests[call])
    assert (error.code, set(error.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"email"})
