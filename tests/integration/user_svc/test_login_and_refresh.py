"""Login failures and backoff, refresh rotation within and after the grace, logout,
and password changes."""

import uuid

import grpc
from sqlalchemy import select

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, bearer, failure
from user_svc.models import User
from user_svc.server import build_domain


def fresh_ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def refresh(client, token: str):  # noqa: ANN201
    return client.stub.RefreshToken(pb.RefreshTokenRequest(refresh=token))


def test_wrong_password_and_unknown_user_are_the_same_401(client):
    user = client.verified_user()
    wrong_password = failure(client.login, user.username, "not the password")
    unknown_user = failure(client.login, f"nobody{uuid.uuid4().hex[:8]}", PASSWORD)
    absurd_user = failure(client.login, "x" * 5000, PASSWORD)
    for error in (wrong_password, unknown_user, absurd_user):
        assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


def test_an_unverified_address_gets_no_token(client):
    user, _ = client.register()
    error = failure(client.login, user.username)
    assert (error.code, error.reason) == (grpc.StatusCode.PERMISSION_DENIED, "EMAIL_NOT_VERIFIED")


def test_refresh_within_the_grace_answers_the_same_successor(client):
    user = client.verified_user()
    first = client.login(user.username)
    a = refresh(client, first.refresh)
    b = refresh(client, first.refresh)  # a concurrent refresh of the same client
    assert a.refresh == b.refresh and b.access  # the same successor, never a second branch
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh=a.refresh))  # logout covers it
    assert failure(refresh, client, b.refresh).reason == "INVALID_REFRESH_TOKEN"


def test_reuse_after_the_grace_revokes_every_token_of_the_family_only(svc, client):
    user = client.verified_user()
    stolen = client.login(user.username)
    other_device = client.login(user.username)
    newer = refresh(client, stolen.refresh)
    svc.clock.advance(seconds=svc.settings.refresh_reuse_grace_seconds + 1)
    error = failure(refresh, client, stolen.refresh)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    assert failure(refresh, client, newer.refresh).reason == "INVALID_REFRESH_TOKEN"
    assert refresh(client, other_device.refresh).access


def test_refresh_tokens_expire_after_seven_days(svc, client):
    user = client.verified_user()
    tokens = client.login(user.username)
    svc.clock.advance(days=7)
    assert failure(refresh, client, tokens.refresh).reason == "INVALID_REFRESH_TOKEN"


def test_unknown_refresh_tokens(client):
    assert failure(refresh, client, "made-up").code == grpc.StatusCode.UNAUTHENTICATED
    client.stub.RevokeToken(pb.RevokeTokenRequest(refresh="made-up"))  # answers OK: reveals nothing
    # No token at all is a malformed request, not a logout (REQUIRED in the contract).
    assert failure(client.stub.RevokeToken, pb.RevokeTokenRequest(refresh="")).fields == {
        "refresh": ["This field is required."]
    }


def test_change_password_errors(client):
    user = client.verified_user()
    auth = bearer(client.login(user.username).access)

    def change(old: str, new: str):  # noqa: ANN202
        request = pb.ChangePasswordRequest(old_password=old, new_password=new)
        return client.stub.ChangePassword(request, metadata=auth + client.vouch(fresh_ip()))

    wrong_old = failure(change, "not my password", "a fine new passphrase")
    assert (wrong_old.code, wrong_old.reason, set(wrong_old.fields)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "WRONG_PASSWORD", {"old_password"},
    )
    for weak in ("short", "qwerty123", f"{user.username.upper()}!2024"):
        error = failure(change, PASSWORD, weak)
        assert (error.reason, set(error.fields)) == ("INVALID_ARGUMENT", {"new_password"})
    assert failure(client.stub.ChangePassword, pb.ChangePasswordRequest()).reason == "TOKEN_MISSING"


def test_wrong_old_passwords_count_as_failed_logins(client):
    user = client.verified_user()
    auth = bearer(client.login(user.username).access)
    request = pb.ChangePasswordRequest(old_password="guess", new_password="a fine new passphrase")
    ip = fresh_ip()
    for _ in range(5):
        failure(client.stub.ChangePassword, request, metadata=auth + client.vouch(ip))
    assert failure(client.login, user.username, ip=ip).code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_login_rehashes_a_password_hashed_with_other_parameters(svc, client):
    user = client.verified_user()
    stronger = build_domain(svc.settings.model_copy(update={"argon2_time_cost": 2}))
    try:
        stronger.sessions.login(user.username, PASSWORD, client_ip="")
        with stronger.database.read() as session:
            stored = session.scalar(select(User.password_hash).where(User.id == user.id))
    finally:
        stronger.database.dispose()
    assert ",t=2," in stored
    assert client.login(user.username).access  # the new hash still verifies
