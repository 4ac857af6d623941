"""The gRPC servicer: translates between protobuf messages and the domain, nothing else."""

from __future__ import annotations

import hmac

import grpc
from google.protobuf import empty_pb2, struct_pb2

from common.auth import Claims
from common.context import claims_var, client_ip_var
from common.errors import ResourceExhausted, Unavailable
from common.protoconv import to_timestamp
from taskmgr.user.v1 import user_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2_grpc
from user_svc.access_tokens import AccessTokens
from user_svc.accounts import Accounts, may_see_email
from user_svc.email_codes import EmailCodes
from user_svc.models import User
from user_svc.notification_settings import KINDS, NotificationSettings, Preferences, mask_kinds
from user_svc.revocations import Broadcaster
from user_svc.sessions import Sessions


class UserService(user_service_pb2_grpc.UserServiceServicer):
    def __init__(
        self,
        accounts: Accounts,
        codes: EmailCodes,
        sessions: Sessions,
        access_tokens: AccessTokens,
        broadcaster: Broadcaster | None = None,
        internal_key: bytes = b"",
        notification_settings: NotificationSettings | None = None,
    ) -> None:
        self._notification_settings = notification_settings
        self._broadcaster = broadcaster
        self._internal_key = internal_key
        self._accounts = accounts
        self._codes = codes
        self._sessions = sessions
        self._access_tokens = access_tokens

    def Register(self, request: pb.RegisterRequest, context) -> pb.User:  # noqa: ANN001
        user = self._accounts.register(request.username, request.email, request.password)
        return _user(user, with_email=True)

    def VerifyOtp(self, request: pb.VerifyOtpRequest, context) -> pb.VerifyOtpResponse:  # noqa: ANN001
        self._codes.verify_email(request.email, request.otp_code)
        return pb.VerifyOtpResponse(detail="Email address verified.")

    def ResendOtp(self, request: pb.ResendOtpRequest, context) -> pb.ResendOtpResponse:  # noqa: ANN001
        return pb.ResendOtpResponse(detail=self._codes.resend_verification(request.email))

    def Login(self, request: pb.LoginRequest, context) -> pb.LoginResponse:  # noqa: ANN001
        pair = self._sessions.login(request.username, request.password, client_ip_var.get())
        return pb.LoginResponse(
            access=pair.access, refresh=pair.refresh, token_type="Bearer", expires_in=pair.expires_in
        )

    def RefreshToken(self, request: pb.RefreshTokenRequest, context) -> pb.RefreshTokenResponse:  # noqa: ANN001
        pair = self._sessions.refresh(request.refresh)
        return pb.RefreshTokenResponse(access=pair.access, refresh=pair.refresh)

    def RevokeToken(self, request: pb.RevokeTokenRequest, context) -> empty_pb2.Empty:  # noqa: ANN001
        self._sessions.revoke(request.refresh)
        return empty_pb2.Empty()

    def ChangePassword(self, request: pb.ChangePasswordRequest, context) -> empty_pb2.Empty:  # noqa: ANN001
        self._accounts.change_password(
            _caller(), request.old_password, request.new_password, client_ip_var.get()
        )
        return empty_pb2.Empty()

    def ForgotPassword(self, request: pb.ForgotPasswordRequest, context) -> pb.ForgotPasswordResponse:  # noqa: ANN001
        return pb.ForgotPasswordResponse(detail=self._codes.forgot_password(request.email))

    def ResetPassword(self, request: pb.ResetPasswordRequest, context) -> empty_pb2.Empty:  # noqa: ANN001
        self._codes.reset_password(request.email, request.otp_code, request.new_password)
        return empty_pb2.Empty()

    def GetProfile(self, request: pb.GetProfileRequest, context) -> pb.User:  # noqa: ANN001
        return _user(self._accounts.profile(_caller()), with_email=True)

    def UpdateProfile(self, request: pb.UpdateProfileRequest, context) -> pb.User:  # noqa: ANN001
        user = self._accounts.update_profile(
            _caller(),
            first_name=request.first_name if request.HasField("first_name") else None,
            last_name=request.last_name if request.HasField("last_name") else None,
        )
        return _user(user, with_email=True)

    def GetNotificationSettings(  # noqa: N802
        self, request: pb.GetNotificationSettingsRequest, context  # noqa: ANN001
    ) -> pb.NotificationSettings:
        assert self._notification_settings is not None
        return _notification_settings(self._notification_settings.get(_caller().user_id))

    def UpdateNotificationSettings(  # noqa: N802
        self, request: pb.UpdateNotificationSettingsRequest, context  # noqa: ANN001
    ) -> pb.NotificationSettings:
        given = request.settings
        paths = list(request.update_mask.paths)
        kinds = mask_kinds(paths) if paths else [kind for kind in KINDS if given.HasField(kind)]
        assert self._notification_settings is not None
        changes = {kind: getattr(given, kind) if given.HasField(kind) else None for kind in kinds}
        return _notification_settings(self._notification_settings.update(_caller().user_id, changes))

    def ListUsers(self, request: pb.ListUsersRequest, context) -> pb.ListUsersResponse:  # noqa: ANN001
        caller = _caller()
        page = self._accounts.list_users(
            request.page_size, request.page_token, request.q, staff=caller.is_staff
        )
        return pb.ListUsersResponse(
            results=[_user(user, with_email=may_see_email(caller, user)) for user in page.users],
            next_page_token=page.next_page_token,
        )

    def GetUser(self, request: pb.GetUserRequest, context) -> pb.User:  # noqa: ANN001
        caller = _caller()
        user = self._accounts.get_user(request.id, staff=caller.is_staff)
        return _user(user, with_email=may_see_email(caller, user))

    def LookupUser(self, request: pb.LookupUserRequest, context) -> pb.User:  # noqa: ANN001, N802
        caller = _caller()
        user = self._accounts.lookup_user(request.username, staff=caller.is_staff)
        return _user(user, with_email=may_see_email(caller, user))

    def DeactivateUser(self, request: pb.DeactivateUserRequest, context) -> pb.User:  # noqa: ANN001
        return _user(self._accounts.set_active(_caller(), request.id, active=False), with_email=True)

    def ReactivateUser(self, request: pb.ReactivateUserRequest, context) -> pb.User:  # noqa: ANN001
        return _user(self._accounts.set_active(_caller(), request.id, active=True), with_email=True)

    def GetRevocations(self, request: pb.GetRevocationsRequest, context) -> pb.Revocations:  # noqa: ANN001
        assert self._broadcaster is not None, "wired by user_svc.server"
        return self._broadcaster.snapshot()

    def WatchRevocations(self, request: pb.GetRevocationsRequest, context):  # noqa: ANN001, ANN201
        # A server stream: the call interceptor wraps unary methods only, so the internal
        # key is checked here.
        given = dict(context.invocation_metadata()).get("x-internal-key", "")
        if not self._internal_key or not hmac.compare_digest(str(given).encode(), self._internal_key):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "This method is internal.")
        assert self._broadcaster is not None, "wired by user_svc.server"
        try:
            yield from self._broadcaster.watch(context.is_active)
        except (ResourceExhausted, Unavailable) as error:
            context.abort(error.code, error.message)

    def GetJwks(self, request: pb.GetJwksRequest, context) -> pb.Jwks:  # noqa: ANN001
        keys = []
        for jwk in self._access_tokens.jwks():
            key = struct_pb2.Struct()
            key.update(jwk)
            keys.append(key)
        return pb.Jwks(keys=keys)


def _caller() -> Claims:
    claims = claims_var.get()
    assert claims is not None, "the interceptor authenticates every non-public method"
    return claims


def _notification_settings(preferences: Preferences) -> pb.NotificationSettings:
    answer = pb.NotificationSettings(**preferences.values)
    if preferences.updated_at is not None:
        answer.update_time.CopyFrom(to_timestamp(preferences.updated_at))
    return answer


def _user(user: User, *, with_email: bool) -> pb.User:
    return pb.User(
        id=user.id,
        username=user.username,
        email=user.email if with_email else None,
        email_verified=user.email_verified,
        is_staff=user.is_staff,
        date_joined=to_timestamp(user.date_joined),
        first_name=user.first_name,
        last_name=user.last_name,
        is_active=user.is_active,
    )
