"""A stranger on another address cannot take the owner's code away: a resend adds a code
beside the open ones, wrong tries burn a code only for the address that made them, and a
distributed guesser is still bounded per code over all addresses (user_svc/otp.py,
docs/security.md), on PostgreSQL and SQLite."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, failure
from user_svc.models import OtpCode
from user_svc.otp import WRONG_TRIES_PER_ADDRESS, WRONG_TRIES_PER_CODE

OWNER = "198.51.100.7"
STRANGER = "203.0.113.66"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def verify(client, email: str, code: str, ip: str):  # noqa: ANN001, ANN201
    return client.stub.VerifyOtp(pb.VerifyOtpRequest(email=email, otp_code=code), metadata=client.vouch(ip))


def reset(client, email: str, code: str, ip: str):  # noqa: ANN001, ANN201
    new_password = f"new {PASSWORD} {uuid.uuid4().hex[:4]}"
    request = pb.ResetPasswordRequest(email=email, otp_code=code, new_password=new_password)
    return client.stub.ResetPassword(request, metadata=client.vouch(ip))


def reset_codes(client, email: str, count: int) -> list[str]:  # noqa: ANN001
    deadline = time.monotonic() + 10
    while len(codes := client.outbox.codes(email, reset=True)) < count:  # sent off the request path
        assert time.monotonic() < deadline, "no reset code was sent"
        time.sleep(0.05)
    return codes


def wrong_attempts(client, user_id: int) -> list[int]:  # noqa: ANN001
    with client.outbox.database.read() as session:
        return list(session.scalars(select(OtpCode.wrong_attempts).where(OtpCode.user_id == user_id)))


def test_a_stranger_who_resends_and_guesses_cannot_block_verification(any_db_svc):
    svc, client = any_db_svc, any_db_svc.client
    _, email = client.register()
    mailed = client.outbox.last_code(email)  # the owner's code, in their mailbox
    # 1. the stranger asks for a new code for the owner's address
    client.stub.ResendOtp(pb.ResendOtpRequest(email=email), metadata=client.vouch(STRANGER))
    client.outbox.settle()
    assert len(client.outbox.codes(email)) == 2
    # 2. the stranger sends wrong codes, more than a code's old budget
    for _ in range(3 * WRONG_TRIES_PER_ADDRESS):
        assert failure(verify, client, email, wrong(mailed), STRANGER).reason == "INVALID_OTP"
    # 4. the owner asks for a code meanwhile: the cooldown still holds ...
    svc.clock.advance(seconds=20)
    asked = failure(client.stub.ResendOtp, pb.ResendOtpRequest(email=email), metadata=client.vouch(OWNER))
    assert asked.reason == "CODE_REQUESTED_RECENTLY"
    # 3. ... but the code the owner has works from the owner's address
    verify(client, email, mailed, OWNER)
    # and it ended the other open code (the one the stranger had sent)
    other = client.outbox.codes(email)[-1]
    assert failure(verify, client, email, other, OWNER).reason == "INVALID_OTP"


def test_a_stranger_cannot_block_a_password_reset(any_db_svc):
    client = any_db_svc.client
    email = f"{client.verified_user().username}@example.com"
    client.stub.ForgotPassword(pb.ForgotPasswordRequest(email=email), metadata=client.vouch(OWNER))
    mailed = reset_codes(client, email, 1)[0]
    any_db_svc.clock.advance(seconds=61)
    client.stub.ForgotPassword(pb.ForgotPasswordRequest(email=email), metadata=client.vouch(STRANGER))
    newer = reset_codes(client, email, 2)[-1]
    for _ in range(2 * WRONG_TRIES_PER_ADDRESS):
        guess = "111111" if "111111" not in (mailed, newer) else "222222"
        assert failure(reset, client, email, guess, STRANGER).reason == "INVALID_OTP"
    # Burnt for the stranger even when they then hold the right code ...
    assert failure(reset, client, email, mailed, STRANGER).reason == "INVALID_OTP"
    # ... the owner resets with the older code, which the newer request left open.
    reset(client, email, mailed, OWNER)


def test_one_address_burns_only_its_own_budget_and_a_sixth_try_is_not_counted(any_db_svc):
    client = any_db_svc.client
    user, email = client.register()
    code = client.outbox.last_code(email)
    for _ in range(WRONG_TRIES_PER_ADDRESS + 3):
        assert failure(verify, client, email, wrong(code), STRANGER).reason == "INVALID_OTP"
    assert wrong_attempts(client, user.id) == [WRONG_TRIES_PER_ADDRESS]  # not checked past its budget
    assert failure(verify, client, email, code, STRANGER).reason == "INVALID_OTP"
    verify(client, email, code, OWNER)


def test_a_distributed_guesser_reaches_a_code_at_most_its_cap_times(any_db_svc):
    client = any_db_svc.client
    user, email = client.register()
    code = client.outbox.last_code(email)
    enough = WRONG_TRIES_PER_CODE // WRONG_TRIES_PER_ADDRESS + 2
    addresses = [f"10.9.{n // 250}.{n % 250 + 1}" for n in range(enough)]
    for address in addresses:
        for _ in range(WRONG_TRIES_PER_ADDRESS):
            assert failure(verify, client, email, wrong(code), address).reason == "INVALID_OTP"
    # 60 wrong tries from 12 addresses: 50 reached the code, then it was burnt for all,
    # the owner included; their next code opens a new budget.
    assert wrong_attempts(client, user.id) == [WRONG_TRIES_PER_CODE]
    assert failure(verify, client, email, code, OWNER).reason == "INVALID_OTP"
    any_db_svc.clock.advance(seconds=61)
    client.stub.ResendOtp(pb.ResendOtpRequest(email=email), metadata=client.vouch(OWNER))
    client.outbox.settle()
    verify(client, email, client.outbox.last_code(email), OWNER)
