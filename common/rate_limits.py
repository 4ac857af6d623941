"""Per-caller limits of the RPCs, the same at the edge and in the service.

A method's limit is the `(taskmgr.api.v1.rate_limit)` option of its contract
("10/minute;100/hour", the `limits` package's notation), unless the operator's
RATE_LIMITS setting names the method ({"taskmgr.user.v1.UserService/Register":
"100/minute"}): an office behind one address, a test rig or a load test raises it there,
for the edge and the services at once. The edge (edge_api.limits) answers 429 early; the
service enforces the same limit for every caller, so calling its gRPC port directly
gains nothing (OWASP API4:2023, unrestricted resource consumption).

Who is counted (`counted_as`, the one place that decides it): on a method that needs an
access token, the USER (the token's subject, "user:<id>"), whatever address they call
from: a user behind many addresses is one user, and colleagues behind one NAT are not
each other's budget. On a public method (login, sign-up: nobody is signed in yet) the
client address, an IPv6 host by its /64 (common.client_ip.limit_key). The edge and the
services verify the token before they count, so an invalid token is counted nowhere
(it is refused 401/UNAUTHENTICATED first) and a valid one cannot be someone else's.

Counting: moving windows (the `limits` package) in RATELIMIT_STORAGE_URI. The default,
memory://, counts per process: with N processes (USER_SVC_PROCESSES, replicas) a
client opening several connections may make up to N times the limit. Point it at a
shared store (redis://...) where that matters. (Login backoff and the code limits are
kept in the database and hold exactly whatever the number of processes.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from common.client_ip import limit_key
from common.errors import ResourceExhausted
from common.options import find_method, rate_limit_option

if TYPE_CHECKING:
    from common.auth import Claims


def method_limit(grpc_method: str, overrides: Mapping[str, str]) -> str:
    """The limit of "/pkg.Service/Method" (or "pkg.Service/Method"): the operator's, else
    the contract's; "" means none."""
    name = grpc_method.lstrip("/")
    if name in overrides:
        return overrides[name]
    descriptor = find_method("/" + name)
    return rate_limit_option(descriptor) if descriptor is not None else ""


def check_overrides(overrides: Mapping[str, str]) -> list[str]:
    """Problems of a RATE_LIMITS value: unknown methods (the stubs must be imported)."""
    return [f"RATE_LIMITS: no such method {name!r}" for name in overrides if find_method("/" + name) is None]


def counted_as(address: str, claims: Claims | None) -> str:
    """The key a call is counted under: "user:<id>" for a caller with a verified access
    token (`claims`), else the client's address as common.client_ip.limit_key groups it
    (an IPv6 host by its /64). An address never looks like "user:<id>" (it has no such
    form), so the two kinds of key cannot share a budget."""
    if claims is not None:
        return f"user:{claims.user_id}"
    return limit_key(address)


@lru_cache(maxsize=256)
def _items(limit: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limit)) if limit else ()


class MethodRateLimits:
    """Counts calls per (method, caller) and refuses those over the method's limit; the
    caller is `counted_as` decides: the signed-in user, else the client's address."""

    def __init__(self, overrides: Mapping[str, str], storage_uri: str = "memory://") -> None:
        self._overrides = dict(overrides)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        # memory:// counts in this process; any other store is a network round trip.
        self.counts_in_process = storage_uri.startswith("memory://")

    def limit_of(self, grpc_method: str) -> str:
        return method_limit(grpc_method, self._overrides)

    def check(self, grpc_method: str, client: str, claims: Claims | None = None) -> None:
        """Counts one call of the client at address `client`, signed in as `claims` (None
        on a public method); raises RESOURCE_EXHAUSTED RATE_LIMITED with RetryInfo (the
        seconds until the window frees a call) when it is over the limit."""
        client = counted_as(client, claims)
        for item in _items(self.limit_of(grpc_method)):
            if not self._limiter.hit(item, grpc_method, client):
                reset_at, _remaining = self._limiter.get_window_stats(item, grpc_method, client)
                wait = max(1.0, reset_at - time.time())
                raise ResourceExhausted(
                    "RATE_LIMITED",
                    f"Too many requests: at most {item}. Try again in {round(wait)} seconds.",
                    retry_after=wait,
                )
