"""Whether a user may be given a task or join a project: they exist, have verified
their email, and staff have not deactivated their account.

user_svc owns users, so task_svc asks it (UserService.GetUser, LookupUser by username)
on behalf of the caller, with the caller's token and a deadline. Behind a small protocol so the rules
can be tested with a fake directory.

user_svc answers anyone but staff only about verified, active accounts (docs/security.md
"Who sees which accounts"): to them an unconfirmed or deactivated account is NOT_FOUND,
so they get NO_SUCH_USER / NO_SUCH_USERNAME, the answer for a user nobody has, and learn
nothing of who signed up. Staff, who may see every account, are told why (NOT_VERIFIED,
DEACTIVATED).
"""

from __future__ import annotations

import logging
from typing import Protocol

import grpc

from common.errors import Unavailable
from common.grpc_client import forwarded_metadata
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc

log = logging.getLogger(__name__)

NO_SUCH_USER = "No user with this id."
NO_SUCH_USERNAME = "No user with this username."
NOT_VERIFIED = "This user has not verified their email address."
DEACTIVATED = "This user's account was deactivated by staff."


class UserDirectory(Protocol):
    def check_assignable(self, user_id: int) -> str | None:
        """Why `user_id` cannot be assigned a task, or None when they can.

        Raises UNAVAILABLE when the answer cannot be had.
        """

    def lookup(self, username: str) -> tuple[int | None, str | None]:
        """The id of the user called `username` (case-insensitive), or None, and why they
        cannot be given work, or None when they can.

        Raises UNAVAILABLE when the answer cannot be had.
        """

    def find(self, username: str) -> tuple[int, bool] | None:
        """The id of the user called `username` (case-insensitive) and whether they are
        staff, or None when there is none.

        Raises UNAVAILABLE when the answer cannot be had.
        """


class GrpcUserDirectory:
    def __init__(self, channel: grpc.Channel, deadline: float) -> None:
        self._stub = user_service_pb2_grpc.UserServiceStub(channel)
        self._deadline = deadline

    def check_assignable(self, user_id: int) -> str | None:
        user = self._call(self._stub.GetUser, user_service_pb2.GetUserRequest(id=user_id))
        if user is None:
            return NO_SUCH_USER
        return _problem(user)

    def lookup(self, username: str) -> tuple[int | None, str | None]:
        user = self._call(self._stub.LookupUser, user_service_pb2.LookupUserRequest(username=username))
        if user is None:
            return None, NO_SUCH_USERNAME
        return user.id, _problem(user)

    def find(self, username: str) -> tuple[int, bool] | None:
        """Only a user who may be given work (a mention of anyone else does nothing)."""
        user = self._call(self._stub.LookupUser, user_service_pb2.LookupUserRequest(username=username))
        return None if user is None or _problem(user) else (user.id, user.is_staff)

    def _call(self, method, request):  # noqa: ANN001, ANN202
        """The user, or None when user_svc says there is none."""
        try:
            return method(request, timeout=self._deadline, metadata=forwarded_metadata())
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            # Anything else means we could not get an answer; the caller may retry.
            log.warning("user_svc %s failed: %s", type(request).__name__, error.code().name)
            raise Unavailable(
                "USER_SERVICE_UNAVAILABLE", "Could not check the user now; try again."
            ) from error


def _problem(user: user_service_pb2.User) -> str | None:
    if not user.email_verified:
        return NOT_VERIFIED
    return None if user.is_active else DEACTIVATED
