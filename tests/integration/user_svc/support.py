"""Helpers of user_svc's integration tests: a clock the tests move, the codes read
from the outbox events, a client that walks a user through sign-up, and the rich
error details of a failed call."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass

import grpc
from grpc_status import rpc_status
from sqlalchemy import func, select

from common import client_ip
from common.db import Database
from common.errors import read_details
from common.options import rate_limit_option
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc
from taskmgr.user.v1 import user_service_pb2 as pb
from user_svc.models import CodeRequest, Outbox

PASSWORD = "correct horse battery staple"


class FakeClock:
    """Real time plus an offset the test moves forward, so no test sleeps."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._offset += dt.timedelta(**delta)


@dataclass(frozen=True)
class RpcError:
    code: grpc.StatusCode
    reason: str
    fields: dict[str, list[str]]
    retry_after: float | None


def error_of(call: grpc.RpcError) -> RpcError:
    """The code, ErrorInfo reason, BadRequest fields and RetryInfo delay of a failed call."""
    details = read_details(rpc_status.from_call(call))
    return RpcError(call.code(), details.reason, details.fields, details.retry_after)


def failure(call, *args, **kwargs) -> RpcError:  # noqa: ANN001
    """Calls `call`, which must fail, and returns its error."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as raised:
        return error_of(raised)
    raise AssertionError(f"{call} succeeded")


class Outboxes:
    """The events user_svc wrote to its outbox (no relay runs in these tests)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def events(self, event_type: str) -> list[events_pb2.Event]:
        with self.database.read() as session:
            rows = session.scalars(select(Outbox).where(Outbox.event_type == event_type).order_by(Outbox.id))
            return [row.event() for row in rows]

    def codes(self, email: str, *, reset: bool = False) -> list[str]:
        """The codes sent to `email`, oldest first."""
        if reset:
            event_type, message = "taskmgr.user.password_reset_requested", events_pb2.PasswordResetRequested
        else:
            event_type, message = "taskmgr.user.otp_requested", events_pb2.OtpRequested
        codes = []
        for event in self.events(event_type):
            payload = message()
            event.data.Unpack(payload)
            if payload.email == email:
                codes.append(payload.code)
        return codes

    def settle(self, timeout: float = 10.0) -> None:
        """Waits until every code asked for has been handled (user_svc sends them apart
        from the request, user_svc.code_dispatch)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.database.read() as session:
                pending = session.scalar(
                    select(func.count()).select_from(CodeRequest).where(CodeRequest.handled_at.is_(None))
                )
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{pending} code requests still pending after {timeout} s")
            time.sleep(0.01)

    def last_code(self, email: str, *, reset: bool = False) -> str:
        return self.codes(email, reset=reset)[-1]


class Client:
    """A UserService stub, and shortcuts to sign a user up."""

    def __init__(self, channel: grpc.Channel, outbox: Outboxes, internal_key: bytes = b"") -> None:
        self.stub = user_service_pb2_grpc.UserServiceStub(channel)
        self.outbox = outbox
        self.internal_key = internal_key

    def vouch(self, ip: str) -> list[tuple[str, str]]:
        """Metadata that says the call comes from client `ip`, as the edge says it."""
        return client_ip.vouched_metadata(self.internal_key, ip)

    def register(self, username: str | None = None, password: str = PASSWORD) -> tuple[pb.User, str]:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        email = f"{username}@example.com"
        user = self.stub.Register(pb.RegisterRequest(username=username, email=email, password=password))
        return user, email

    def verified_user(self, username: str | None = None, password: str = PASSWORD) -> pb.User:
        user, email = self.register(username, password)
        self.stub.VerifyOtp(pb.VerifyOtpRequest(email=email, otp_code=self.outbox.last_code(email)))
        return user

    def login(self, username: str, password: str = PASSWORD, ip: str = "") -> pb.LoginResponse:
        metadata = self.vouch(ip) if ip else None
        return self.stub.Login(pb.LoginRequest(username=username, password=password), metadata=metadata)


def bearer(access: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {access}")]


def generous_rate_limits() -> dict[str, str]:
    """RATE_LIMITS for tests that make many calls from one address (tests of the limits
    themselves use the contract's)."""
    service = user_service_pb2.DESCRIPTOR.services_by_name["UserService"]
    return {
        f"{service.full_name}/{method.name}": "100000/minute"
        for method in service.methods
        if rate_limit_option(method)
    }
