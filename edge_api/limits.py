"""Per-client-IP rate limits (Flask-Limiter): the `rate_limit` method option, or the
operator's RATE_LIMITS for that method (common.rate_limits.method_limit, which the
services apply too, so these only answer earlier than the service would).

Storage comes from RATELIMIT_STORAGE_URI. The default, memory://, counts per worker
process: with N edge workers a client can make up to N times the limit
before every worker has refused it, and counts reset when a worker restarts. That is
acceptable on a laptop; deployments with several workers or replicas point the
setting at a shared store (redis://...) so the limit is the limit.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from edge_api.errors import problem


def create_limiter(app: Flask, storage_uri: str) -> Limiter:
    # get_remote_address is the socket peer, or the trusted proxy's X-Forwarded-For hop
    # once ProxyFix (set up in the app factory) has rewritten remote_addr.
    return Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage_uri,
        on_breach=_too_many_requests,
        # Its headers would put Retry-After on successful answers too; the 429 sets it.
        headers_enabled=False,
    )


def _too_many_requests(limit: RequestLimit) -> Response:
    wait = max(1, math.ceil(limit.window.reset_time - time.time()))
    return problem(
        429,
        f"Too many requests: at most {limit.limit}. Try again in {wait} seconds.",
        code="RATE_LIMITED",
        headers={"Retry-After": str(wait)},
    )
