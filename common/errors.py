"""Domain errors and their wire form, a google.rpc.Status with rich details.

Domain code raises these; one interceptor turns them into the status the client sees:
the canonical code, an English message, an ErrorInfo reason (UPPER_SNAKE, domain
"taskmgr"), BadRequest field violations and RetryInfo where they apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "taskmgr"


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        fields: Mapping[str, Sequence[str] | str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.fields = {
            name: [problems] if isinstance(problems, str) else list(problems)
            for name, problems in (fields or {}).items()
        }
        self.retry_after = retry_after

    def to_status(self) -> status_pb2.Status:
        details = [error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)]
        if self.fields:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=name, description=text)
                        for name, problems in self.fields.items()
                        for text in problems
                    ]
                )
            )
        if self.retry_after is not None:
            delay = duration_pb2.Duration(seconds=max(1, math.ceil(self.retry_after)))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        packed = []
        for detail in details:
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        return status_pb2.Status(
            code=getattr(code_pb2, self.code.name), message=self.message, details=packed
        )


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """Also the version mismatch of optimistic concurrency (reason VERSION_MISMATCH)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    """A dependency is away; always carries RetryInfo (1 s unless told otherwise)."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, reason: str, message: str, *, retry_after: float | None = 1.0, **kwargs) -> None:  # noqa: ANN003
        super().__init__(reason, message, retry_after=retry_after, **kwargs)


@dataclass(frozen=True)
class StatusDetails:
    """What a client reads back from a google.rpc.Status: the inverse of to_status."""

    reason: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)
    retry_after: float | None = None  # seconds


def read_details(status: status_pb2.Status | None) -> StatusDetails:
    """The ErrorInfo reason, BadRequest field violations and RetryInfo delay in `status`."""
    reason, fields, retry_after = "", {}, None
    for packed in status.details if status else ():
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            reason = info.reason
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            packed.Unpack(bad_request)
            for violation in bad_request.field_violations:
                fields.setdefault(violation.field, []).append(violation.description)
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    return StatusDetails(reason, fields, retry_after)


def invalid(fields: Mapping[str, Sequence[str] | str], message: str = "Invalid request.") -> InvalidArgument:
    """The usual INVALID_ARGUMENT: some fields are at fault."""
    return InvalidArgument("INVALID_ARGUMENT", message, fields=fields)
