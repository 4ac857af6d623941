"""The one server interceptor: request id, authentication, control characters in any
request string (common.validation), the contract's field rules (common.contract_rules),
error mapping, access log (failed calls at INFO, successful ones at DEBUG).

A request that is not its message's protobuf encoding is INVALID_ARGUMENT
(MALFORMED_REQUEST) once the caller is authenticated, never gRPC's own INTERNAL.

Error mapping: a DomainError becomes its status; a dependency that is away
(`common.faults.dependency_away`: database, broker, peer service) becomes UNAVAILABLE
with RetryInfo; anything else is INTERNAL with a generic message. A handler whose
database connection was lost before it committed is run once more first
(`common.db.retry_once_on_disconnect`).

Authentication is decided from the method's descriptor: methods marked
`(taskmgr.api.v1.public)` need no token, internal methods need the internal key,
every other taskmgr method needs a valid access token. Health and reflection are
outside the taskmgr packages and stay open for operators.

The client is the call's peer address, or the address the edge vouched for with the
internal key (common.client_ip); a caller's own `x-client-ip` is ignored. With
`rate_limits`, every method with a limit (common.rate_limits) is counted after the
caller is authenticated: against the token's user on a method that needs one, against
that client on a public method, so the limits hold for direct gRPC callers as at the edge.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection

import grpc
from grpc_status import rpc_status

from common import client_ip
from common.auth import TokenVerifier
from common.context import claims_var, client_ip_var, request_id_var
from common.contract_rules import check_request
from common.db import retry_once_on_disconnect
from common.errors import DomainError, InvalidArgument, Unauthenticated, Unavailable, invalid
from common.faults import RETRY_AFTER_SECONDS, dependency_away
from common.options import find_method, is_public
from common.rate_limits import MethodRateLimits
from common.validation import message_text_problems

log = logging.getLogger("taskmgr.access")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class CallInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        internal_methods: Collection[str] = (),
        internal_key: bytes = b"",
        rate_limits: MethodRateLimits | None = None,
    ) -> None:
        """`internal_key` admits the internal methods and checks the addresses the edge
        vouches for; `rate_limits` counts the calls of methods that have a limit."""
        self._verifier = verifier
        self._internal_methods = frozenset(internal_methods)
        self._internal_key = internal_key
        self._rate_limits = rate_limits
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or not method.startswith("/taskmgr."):
            return handler
        # Built once per method (only the server's own methods, so no caller grows it):
        # gRPC asks on every call, and building the closures was 4% of a GetTask.
        wrapped = self._wrapped[method] = self._wrap_handler(handler, method)
        return wrapped

    def _wrap_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        authenticate = self._authenticator_for(method)
        if self._rate_limits is not None and self._rate_limits.limit_of(method):
            authenticate = _then_limited(authenticate, self._rate_limits, method)
        behavior = _wrap(handler.unary_unary, method, authenticate, self._internal_key)
        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _authenticator_for(self, method: str) -> Callable[[dict[str, str]], None]:
        if method in self._internal_methods:
            return self._check_internal_key
        descriptor = find_method(method)
        if descriptor is not None and is_public(descriptor):
            return _no_check
        return self._check_token

    def _check_token(self, metadata: dict[str, str]) -> None:
        claims_var.set(self._verifier.verify_authorization(metadata.get("authorization")))

    def _check_internal_key(self, metadata: dict[str, str]) -> None:
        given = metadata.get("x-internal-key", "").encode()
        if not self._internal_key or not hmac.compare_digest(given, self._internal_key):
            raise Unauthenticated("INTERNAL_KEY_INVALID", "This method is internal.")


def _no_check(_metadata: dict[str, str]) -> None:
    return None


class _Undecodable:
    """A request that is not its message's protobuf encoding."""


_UNDECODABLE = _Undecodable()


def _tolerant(deserialize: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    """The method's deserializer, giving _UNDECODABLE instead of raising: gRPC would
    answer INTERNAL before any interceptor code runs, and log an ERROR with a traceback,
    for bytes a caller chose. The call then authenticates as usual and is refused as
    INVALID_ARGUMENT (`_wrap`)."""
    if deserialize is None:
        return None

    def decode(data: bytes) -> object:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, a string field that is not UTF-8, ...
            return _UNDECODABLE

    return decode


def _then_limited(
    authenticate: Callable[[dict[str, str]], None], rate_limits: MethodRateLimits, method: str
) -> Callable[[dict[str, str]], None]:
    def check(metadata: dict[str, str]) -> None:
        authenticate(metadata)  # sets claims_var on a method that needs a token
        rate_limits.check(method, client_ip_var.get(), claims_var.get())

    return check


def _wrap(behavior, method: str, authenticate: Callable[[dict[str, str]], None], key: bytes):  # noqa: ANN001
    def handle(request, context: grpc.ServicerContext):  # noqa: ANN001
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        given_id = metadata.get("x-request-id", "")
        tokens = [
            request_id_var.set(given_id if _SANE_REQUEST_ID.match(given_id) else uuid.uuid4().hex),
            # The edge's word, when it proved it is the edge; else the socket's.
            client_ip_var.set(client_ip.trusted_address(metadata, key) or _peer_ip(context.peer())),
            claims_var.set(None),
        ]
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            authenticate(metadata)
            if request is _UNDECODABLE:
                raise InvalidArgument("MALFORMED_REQUEST", "The request is not a valid protobuf message.")
            problems = message_text_problems(request)  # NUL and control characters, any field
            if problems:
                raise invalid(problems)
            check_request(request)  # REQUIRED fields and buf.validate rules (the contract)
            # A stale pooled connection costs one more run, not a failed call.
            return retry_once_on_disconnect(lambda: behavior(request, context))
        except DomainError as error:
            code = error.code
            context.abort_with_status(rpc_status.to_status(error.to_status()))
        except Exception as error:
            if context.code() not in (None, grpc.StatusCode.OK):  # the handler aborted itself
                code = context.code()
                raise
            if dependency_away(error):
                code = grpc.StatusCode.UNAVAILABLE
                log.warning("dependency away in %s: %r", method, error)
                away = Unavailable(
                    "DEPENDENCY_UNAVAILABLE",
                    "A service this call needs is unavailable; try again later.",
                    retry_after=RETRY_AFTER_SECONDS,
                )
                context.abort_with_status(rpc_status.to_status(away.to_status()))
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error in %s", method)
            context.abort(grpc.StatusCode.INTERNAL, "Internal error.")
        finally:
            # A call that succeeded is logged at DEBUG (a JSON record per call was a tenth
            # of a service's CPU at INFO: py-spy, bench/perf_vs_floor.py), as the edge logs
            # its requests; every failed call is logged at INFO, with the request_id.
            level = logging.DEBUG if code == grpc.StatusCode.OK else logging.INFO
            if log.isEnabledFor(level):
                elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
                log.log(level, "rpc", extra={"method": method, "code": code.name, "duration_ms": elapsed_ms})
            for var, token in zip((request_id_var, client_ip_var, claims_var), tokens, strict=True):
                var.reset(token)

    return handle


def _peer_ip(peer: str) -> str:
    # "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition("]")[0].lstrip("[")
    return rest.rpartition(":")[0] or rest
