"""The whole journey of one user over gRPC, on PostgreSQL and on SQLite."""

import grpc
import jwt

from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, bearer, failure


def test_register_verify_login_profile_refresh_revoke_change_and_reset(any_db_svc):
    svc = any_db_svc
    stub, outbox = svc.client.stub, svc.client.outbox

    # Register: the account is unverified; user.registered and the code go to the outbox.
    user = stub.Register(pb.RegisterRequest(username="Alice", email="Alice@Example.COM", password=PASSWORD))
    assert (user.username, user.email, user.email_verified, user.is_staff) == (
        "Alice", "alice@example.com", False, False,
    )
    registered = events_pb2.UserRegistered()
    [event] = outbox.events("taskmgr.user.registered")
    assert (event.source, event.subject) == ("user_svc", str(user.id))
    event.data.Unpack(registered)
    assert registered.email == "alice@example.com"
    assert failure(stub.Login, pb.LoginRequest(username="Alice", password=PASSWORD)).reason == (
        "EMAIL_NOT_VERIFIED"
    )

    # Verify with the code from the user.otp_requested event; user.verified follows.
    code = outbox.last_code("alice@example.com")
    assert stub.VerifyOtp(pb.VerifyOtpRequest(email="ALICE@example.com", otp_code=code)).detail
    assert len(outbox.events("taskmgr.user.verified")) == 1
    assert failure(stub.VerifyOtp, pb.VerifyOtpRequest(email="alice@example.com", otp_code=code)).reason == (
        "INVALID_OTP"  # used up
    )

    # Login: an EdDSA access token with the contract's claims, and a refresh token.
    tokens = stub.Login(pb.LoginRequest(username="Alice", password=PASSWORD))
    assert (tokens.token_type, tokens.expires_in) == ("Bearer", 900)
    header = jwt.get_unverified_header(tokens.access)
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in stub.GetJwks(pb.GetJwksRequest()).keys}
    claims = jwt.decode(tokens.access, options={"verify_signature": False})
    assert claims["sub"] == str(user.id) and claims["user_id"] == user.id
    assert {"username", "email", "is_staff", "iss", "aud", "iat", "exp", "jti"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 900

    # Profile: read and update only the fields present.
    auth = bearer(tokens.access)
    assert stub.GetProfile(pb.GetProfileRequest(), metadata=auth).email == "alice@example.com"
    stub.UpdateProfile(pb.UpdateProfileRequest(first_name="Alice"), metadata=auth)
    profile = stub.UpdateProfile(pb.UpdateProfileRequest(last_name="Liddell"), metadata=auth)
    assert (profile.first_name, profile.last_name) == ("Alice", "Liddell")

    # List users: the caller's own email shows, another user's does not.
    svc.client.verified_user("bob")
    listed = stub.ListUsers(pb.ListUsersRequest(), metadata=auth)
    by_name = {entry.username: entry for entry in listed.results}
    assert by_name["Alice"].HasField("email") and not by_name["bob"].HasField("email")
    assert listed.next_page_token == ""
    assert not stub.GetUser(pb.GetUserRequest(id=by_name["bob"].id), metadata=auth).HasField("email")

    # Refresh rotates; the old token presented after the grace revokes the family.
    rotated = stub.RefreshToken(pb.RefreshTokenRequest(refresh=tokens.refresh))
    assert rotated.refresh != tokens.refresh
    svc.clock.advance(seconds=svc.settings.refresh_reuse_grace_seconds + 1)
    reuse = failure(stub.RefreshToken, pb.RefreshTokenRequest(refresh=tokens.refresh))
    assert (reuse.code, reuse.reason) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    revoked = failure(stub.RefreshToken, pb.RefreshTokenRequest(refresh=rotated.refresh))
    assert revoked.reason == "INVALID_REFRESH_TOKEN"

    # Logout (revoke) a fresh login's family.
    second = stub.Login(pb.LoginRequest(username="Alice", password=PASSWORD))
    stub.RevokeToken(pb.RevokeTokenRequest(refresh=second.refresh))
    assert failure(stub.RefreshToken, pb.RefreshTokenRequest(refresh=second.refresh)).reason == (
        "INVALID_REFRESH_TOKEN"
    )

    # Change password: every refresh token is revoked; the new password logs in.
    third = stub.Login(pb.LoginRequest(username="Alice", password=PASSWORD))
    stub.ChangePassword(
        pb.ChangePasswordRequest(old_password=PASSWORD, new_password="a brand new passphrase"),
        metadata=bearer(third.access),
    )
    assert failure(stub.RefreshToken, pb.RefreshTokenRequest(refresh=third.refresh)).reason == (
        "INVALID_REFRESH_TOKEN"
    )
    assert failure(stub.Login, pb.LoginRequest(username="Alice", password=PASSWORD)).reason == (
        "INVALID_CREDENTIALS"
    )
    fourth = stub.Login(pb.LoginRequest(username="Alice", password="a brand new passphrase"))

    # Forgot and reset: the reset code comes in user.password_reset_requested.
    stub.ForgotPassword(pb.ForgotPasswordRequest(email="alice@example.com"))
    outbox.settle()  # sent apart from the request (user_svc.code_dispatch)
    reset_code = outbox.last_code("alice@example.com", reset=True)
    stub.ResetPassword(
        pb.ResetPasswordRequest(
            email="alice@example.com", otp_code=reset_code, new_password="third time lucky"
        )
    )
    assert failure(stub.RefreshToken, pb.RefreshTokenRequest(refresh=fourth.refresh)).reason == (
        "INVALID_REFRESH_TOKEN"
    )
    assert stub.Login(pb.LoginRequest(username="Alice", password="third time lucky")).access
