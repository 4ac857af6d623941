"""Check-then-act under real concurrency: calls fired at once over gRPC, on PostgreSQL and
on the embedded SQLite (conftest). Every rule that reads and then writes (a code's
tries, a code used once, a name taken once) holds however the calls interleave."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from sqlalchemy import select

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, error_of, failure
from tests.support.parallel import at_once, failed, succeeded
from user_svc.backoff import PAIR
from user_svc.models import OtpCode
from user_svc.otp import WRONG_TRIES_PER_ADDRESS
from user_svc.server import build_domain
from user_svc.staff import StaffError, create_staff

PARALLEL = 20
# A code that is wrong, used or burnt; or (where a rule bounds guesses per address) 429.
REFUSED = {"INVALID_OTP", "TOO_MANY_ATTEMPTS"}


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _verify(stub, email: str, code: str):  # noqa: ANN001, ANN202
    return lambda: stub.VerifyOtp(pb.VerifyOtpRequest(email=email, otp_code=code))


def test_parallel_wrong_guesses_all_count_and_burn_the_code(client) -> None:
    user, email = client.register()
    code = client.outbox.last_code(email)
    outcomes = at_once([_verify(client.stub, email, _wrong(code))] * PARALLEL)
    assert not succeeded(outcomes)
    reasons = [error_of(error).reason for error in failed(outcomes)]
    assert set(reasons) <= REFUSED
    # All from one address: exactly its budget for the code is counted, none lost to a
    # concurrent try (an increment read before the other's write) and none beyond it.
    with client.outbox.database.read() as session:
        counted = session.scalar(select(OtpCode.wrong_attempts).where(OtpCode.user_id == user.id))
    assert counted == WRONG_TRIES_PER_ADDRESS
    assert failure(_verify(client.stub, email, code)).reason in REFUSED  # burnt for this address


def test_the_right_code_sent_many_times_at_once_is_accepted_once(client) -> None:
    _user, email = client.register()
    code = client.outbox.last_code(email)
    outcomes = at_once([_verify(client.stub, email, code)] * PARALLEL)
    assert len(succeeded(outcomes)) == 1
    assert {error_of(error).reason for error in failed(outcomes)} <= REFUSED
    verified = [event for event in client.outbox.events("taskmgr.user.verified") if email in str(event)]
    assert len(verified) == 1


def _reset_code(client, email: str, timeout: float = 10.0) -> str:  # noqa: ANN001
    client.stub.ForgotPassword(pb.ForgotPasswordRequest(email=email))
    deadline = time.monotonic() + timeout
    while not (codes := client.outbox.codes(email, reset=True)):  # sent apart from the request
        assert time.monotonic() < deadline, "no reset code was sent"
        time.sleep(0.05)
    return codes[-1]


def test_one_reset_code_sets_one_password_however_many_use_it_at_once(client) -> None:
    user = client.verified_user()
    email = f"{user.username}@example.com"
    code = _reset_code(client, email)
    passwords = [f"new secret number {n} {uuid.uuid4().hex[:6]}" for n in range(8)]
    outcomes = at_once([
        lambda new=new: client.stub.ResetPassword(
            pb.ResetPasswordRequest(email=email, otp_code=code, new_password=new)
        )
        for new in passwords
    ])
    [winner] = [new for new, outcome in zip(passwords, outcomes, strict=True) if succeeded([outcome])]
    assert {error_of(error).reason for error in failed(outcomes)} <= REFUSED
    assert client.login(user.username, winner).access
    loser = next(new for new in passwords if new != winner)
    assert failure(client.login, user.username, loser).code == grpc.StatusCode.UNAUTHENTICATED


def test_a_username_and_an_address_are_taken_once_however_many_ask_at_once(client) -> None:
    name = f"u{uuid.uuid4().hex[:10]}"
    same_name = at_once([
        lambda n=n: client.stub.Register(
            pb.RegisterRequest(username=name, email=f"{name}.{n}@example.com", password=PASSWORD)
        )
        for n in range(8)
    ])
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    same_address = at_once([
        lambda n=n: client.stub.Register(
            pb.RegisterRequest(username=f"{name}_{n}", email=address, password=PASSWORD)
        )
        for n in range(8)
    ])
    for outcomes, reason in ((same_name, "USERNAME_TAKEN"), (same_address, "EMAIL_TAKEN")):
        assert len(succeeded(outcomes)) == 1
        assert {(error_of(e).code, error_of(e).reason) for e in failed(outcomes)} == {
            (grpc.StatusCode.ALREADY_EXISTS, reason)
        }


def _wrong_logins_at_once(client, username: str, ip: str, count: int) -> list[str]:  # noqa: ANN001
    outcomes = at_once([lambda: client.login(username, "not the password at all", ip=ip)] * count)
    assert not succeeded(outcomes)
    return [error_of(error).reason for error in failed(outcomes)]


def test_parallel_wrong_logins_are_judged_no_more_than_the_backoff_allows(client) -> None:
    user = client.verified_user()
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    reasons = _wrong_logins_at_once(client, user.username, ip, PARALLEL)
    # Each try is charged before its password is checked: a burst cannot all pass the
    # check at once. (SERVER_BUSY: shed before hashing, judged neither.)
    assert set(reasons) <= {"INVALID_CREDENTIALS", "TOO_MANY_LOGIN_ATTEMPTS", "SERVER_BUSY"}
    assert 1 <= reasons.count("INVALID_CREDENTIALS") <= PAIR.free_failures


def test_create_staff_of_a_name_registered_meanwhile_says_so(svc, client) -> None:
    # The command checks the name, asks for the password (the operator types for a
    # while), then inserts: a sign-up in between is refused by the unique constraint.
    name = f"staff{uuid.uuid4().hex[:6]}"
    domain = build_domain(svc.settings)

    def password_while_someone_registers() -> str:
        client.register(name)
        return "a strong staff password 42"

    try:
        with pytest.raises(StaffError, match="registered meanwhile"):
            create_staff(domain, name, f"{name}.staff@example.com", password_while_someone_registers)
    finally:
        domain.database.dispose()
