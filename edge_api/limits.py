"""Per-client-IP rate limits at the edge: a method's `rate_limit` contract option, or the
operator's RATE_LIMITS, counted by common.rate_limits (the `limits` package, moving
windows) exactly as the services count them, and answered 429 with Retry-After.

Only routes with a limit pay for one: their view counts the request before anything
else (a flood of bad tokens is a flood too), the others run no limiter code at all.
(Flask-Limiter, used before, ran its before-request hook on every request, limited or
not: about a quarter of the edge's own CPU on a task list, profiled with py-spy.)

Storage comes from RATELIMIT_STORAGE_URI. The default, memory://, counts per worker
process: with N edge workers a client can make up to N times the limit before every
worker has refused it, and counts reset when a worker restarts. That is acceptable on a
laptop; deployments with several workers or replicas point the setting at a shared
store (redis://...) so the limit is the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps

from flask import Response, request

from common.errors import ResourceExhausted
from common.rate_limits import MethodRateLimits
from edge_api.errors import problem

View = Callable[..., Response]


def limited(view: View, limits: MethodRateLimits, grpc_method: str) -> View:
    """`view`, counting each request against `grpc_method`'s limit for the client's
    address (the socket peer, or the trusted proxy's X-Forwarded-For hop once ProxyFix
    has set remote_addr); over it, a 429 problem (RATE_LIMITED) with Retry-After in whole
    seconds (RFC 9110 section 10.2.3, RFC 6585 section 4) and nothing else is done."""

    @wraps(view)
    def counted(**path_values: str) -> Response:
        try:
            limits.check(grpc_method, request.remote_addr or "")
        except ResourceExhausted as error:
            wait = max(1, math.ceil(error.retry_after or 1))
            return problem(429, error.message, code="RATE_LIMITED", headers={"Retry-After": str(wait)})
        return view(**path_values)

    return counted
