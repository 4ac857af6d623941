"""Instant revocation at user_svc, over real gRPC on PostgreSQL and SQLite: logout, a
refresh token presented twice, a password change or reset and a deactivation end the
access tokens at once (401 TOKEN_REVOKED), by session (`sid`) or by epoch; a deactivated
user can neither log in nor refresh; the internal GetRevocations and WatchRevocations."""

from __future__ import annotations

import threading

import grpc
import pytest
from sqlalchemy import update

from common.revocation import SESSION_REVOKED, SESSIONS_ENDED
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, bearer, failure
from user_svc.models import User

NEW_PASSWORD = "a brand new battery horse"


def profile(client, access: str) -> pb.User:  # noqa: ANN001
    return client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(access))


def refused(client, access: str) -> str:  # noqa: ANN001
    error = failure(client.stub.GetProfile, pb.GetProfileRequest(), metadata=bearer(access))
    assert error.code is grpc.StatusCode.UNAUTHENTICATED
    return error.reason


def staff_login(client) -> tuple[pb.User, pb.LoginResponse]:  # noqa: ANN001
    user = client.verified_user()
    with client.outbox.database.transaction() as session:
        session.execute(update(User).where(User.id == user.id).values(is_staff=True))
    return user, client.login(user.username)


def internal(client) -> list[tuple[str, str]]:  # noqa: ANN001
    return [("x-internal-key", client.internal_key.decode())]


def test_logout_ends_that_session_only(client) -> None:
    user = client.verified_user()
    first, second = client.login(user.username), client.login(user.username)
    profile(client, first.access)  # remembered by the verifier: the revocation must beat that
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=first.refresh))
    assert refused(client, first.access) == "TOKEN_REVOKED"
    assert profile(client, second.access).id == user.id
    [event] = [e for e in client.outbox.events(SESSION_REVOKED) if e.subject == str(user.id)]
    assert event.type == SESSION_REVOKED


def test_a_refreshed_access_token_belongs_to_the_same_session(client) -> None:
    user = client.verified_user()
    login = client.login(user.username)
    renewed = client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=login.refresh))
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=renewed.refresh))
    assert refused(client, login.access) == "TOKEN_REVOKED"
    assert refused(client, renewed.access) == "TOKEN_REVOKED"


def test_a_refresh_token_presented_twice_ends_the_session_and_its_access_tokens(svc, client) -> None:
    user = client.verified_user()
    login = client.login(user.username)
    renewed = client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=login.refresh))
    svc.clock.advance(seconds=60)  # past the reuse grace
    client_error = failure(client.stub.RefreshToken, pb.RefreshTokenRequest(refresh=login.refresh))
    assert client_error.reason == "REFRESH_TOKEN_REUSED"
    assert refused(client, renewed.access) == "TOKEN_REVOKED"


def test_a_password_change_ends_every_session_of_the_user(client) -> None:
    user, other = client.verified_user(), client.verified_user()
    sessions = [client.login(user.username) for _ in range(2)]
    bystander = client.login(other.username)
    client.stub.ChangePassword(
        pb.ChangePasswordRequest(old_password=PASSWORD, new_password=NEW_PASSWORD),
        metadata=bearer(sessions[0].access),
    )
    assert [refused(client, s.access) for s in sessions] == ["TOKEN_REVOKED"] * 2
    assert profile(client, bystander.access).id == other.id
    fresh = client.login(user.username, NEW_PASSWORD)  # a new login carries the new epoch
    assert profile(client, fresh.access).id == user.id


def test_a_password_reset_ends_every_session_of_the_user(client) -> None:
    user = client.verified_user()
    login = client.login(user.username)
    client.stub.ForgotPassword(pb.ForgotPasswordRequest(email=user.email))
    client.outbox.settle()
    code = client.outbox.last_code(user.email, reset=True)
    reset = pb.ResetPasswordRequest(email=user.email, otp_code=code, new_password=NEW_PASSWORD)
    client.stub.ResetPassword(reset)
    assert refused(client, login.access) == "TOKEN_REVOKED"
    [ended] = [e for e in client.outbox.events(SESSIONS_ENDED) if e.subject == str(user.id)]
    assert ended.type == SESSIONS_ENDED


def test_deactivation_by_staff_ends_sessions_and_blocks_login_and_refresh(client) -> None:
    _, staff = staff_login(client)
    user = client.verified_user()
    login = client.login(user.username)
    done = client.stub.DeactivateUser(pb.DeactivateUserRequest(id=user.id), metadata=bearer(staff.access))
    assert done.id == user.id
    assert refused(client, login.access) == "TOKEN_REVOKED"
    assert failure(client.login, user.username).reason == "ACCOUNT_DEACTIVATED"
    refresh = failure(client.stub.RefreshToken, pb.RefreshTokenRequest(refresh=login.refresh))
    assert refresh.code is grpc.StatusCode.UNAUTHENTICATED
    # Again: nothing more to end (no second epoch raise).
    client.stub.DeactivateUser(pb.DeactivateUserRequest(id=user.id), metadata=bearer(staff.access))
    assert len([e for e in client.outbox.events(SESSIONS_ENDED) if e.subject == str(user.id)]) == 1
    client.stub.ReactivateUser(pb.ReactivateUserRequest(id=user.id), metadata=bearer(staff.access))
    again = client.login(user.username)
    assert profile(client, again.access).id == user.id
    assert refused(client, login.access) == "TOKEN_REVOKED"  # ended sessions stay ended


def test_only_staff_deactivate_and_never_themselves(client) -> None:
    staff_user, staff = staff_login(client)
    user, other = client.verified_user(), client.verified_user()
    plain = client.login(user.username)
    calls = [(client.stub.DeactivateUser, pb.DeactivateUserRequest),
             (client.stub.ReactivateUser, pb.ReactivateUserRequest)]
    for method, request_type in calls:
        error = failure(method, request_type(id=other.id), metadata=bearer(plain.access))
        assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "STAFF_ONLY")
        error = failure(method, request_type(id=staff_user.id), metadata=bearer(staff.access))
        assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CANNOT_DEACTIVATE_SELF")
        error = failure(method, request_type(id=10**12), metadata=bearer(staff.access))
        assert error.code is grpc.StatusCode.NOT_FOUND
    assert profile(client, plain.access).id == user.id


def test_get_revocations_is_internal_and_holds_what_is_alive(client) -> None:
    error = failure(client.stub.GetRevocations, pb.GetRevocationsRequest())
    assert error.reason == "INTERNAL_KEY_INVALID"
    user = client.verified_user()
    login = client.login(user.username)
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=login.refresh))
    snapshot = client.stub.GetRevocations(pb.GetRevocationsRequest(), metadata=internal(client))
    assert any(s.user_id == user.id for s in snapshot.sessions)


def test_watch_revocations_sends_a_snapshot_then_each_new_revocation(client) -> None:
    with pytest.raises(grpc.RpcError) as no_key:
        next(iter(client.stub.WatchRevocations(pb.GetRevocationsRequest())))
    assert no_key.value.code() is grpc.StatusCode.UNAUTHENTICATED
    user = client.verified_user()
    login = client.login(user.username)
    stream = client.stub.WatchRevocations(pb.GetRevocationsRequest(), metadata=internal(client))
    next(stream)  # the snapshot
    seen = threading.Event()

    def follow() -> None:
        for message in stream:
            if any(s.user_id == user.id for s in message.sessions):
                seen.set()
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=login.refresh))
    assert seen.wait(2.0)
    stream.cancel()
