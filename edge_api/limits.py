"""Rate limits at the edge: a method's `rate_limit` contract option, or the operator's
RATE_LIMITS, counted by common.rate_limits (the `limits` package, moving windows)
exactly as the services count them: per user on a route that needs an access token,
per client address on a public one (common.rate_limits.counted_as); answered 429 with
Retry-After.

Only routes with a limit pay for one: their view verifies the token first (a request
without a valid one is 401 and counted against nobody: whose budget would it be?), then
counts the request before anything else; the others run no limiter code at all. The
view's own token check after that is a lookup (verified tokens are remembered).
(Flask-Limiter, used before, ran its before-request hook on every request, limited or
not: about a quarter of the edge's own CPU on a task list, profiled with py-spy.)

Storage comes from RATELIMIT_STORAGE_URI. The default, memory://, counts per worker
process: with N edge workers a client can make up to N times the limit before every
worker has refused it, and counts reset when a worker restarts. That is acceptable on a
laptop; deployments with several workers or replicas point the setting at a shared
store (redis://...) so the limit is the limit. A shared store's round trip runs on a
thread, not on the worker's event loop (edge_api.greenlets.off_the_loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from flask import Response, request

from common.errors import ResourceExhausted
from common.rate_limits import MethodRateLimits
from edge_api.contract import Route
from edge_api.errors import problem
from edge_api.greenlets import off_the_loop

if TYPE_CHECKING:
    from common.auth import Claims

View = Callable[..., Response]
Authenticate = Callable[[Route], "Claims | None"]


def limited(view: View, limits: MethodRateLimits, route: Route, authenticate: Authenticate) -> View:
    """`view`, counting each request against the route's method's limit: for the user
    `authenticate` verified (edge_api.authn; its 401 comes first), or on a public route
    for the client's address (the socket peer, or the trusted proxy's X-Forwarded-For hop
    once ProxyFix has set remote_addr); over it, a 429 problem (RATE_LIMITED) with
    Retry-After in whole seconds (RFC 9110 section 10.2.3, RFC 6585 section 4) and
    nothing else is done."""
    grpc_method = route.grpc_path

    @wraps(view)
    def counted(**path_values: str) -> Response:
        claims = authenticate(route)
        try:
            if limits.counts_in_process:
                limits.check(grpc_method, request.remote_addr or "", claims)
            else:  # a shared store (redis://...): its round trip must not hold the worker's loop
                off_the_loop(limits.check, grpc_method, request.remote_addr or "", claims)
        except ResourceExhausted as error:
            wait = max(1, math.ceil(error.retry_after or 1))
            return problem(429, error.message, code="RATE_LIMITED", headers={"Retry-After": str(wait)})
        return view(**path_values)

    return counted
