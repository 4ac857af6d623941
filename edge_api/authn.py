"""Authentication first: the edge verifies the bearer token of every non-public route
before it reads anything else of the request, so a request without a valid token is 401
whatever else is wrong with it (rest-contract.md, "Authentication comes first"; a
stranger learns nothing about the validation rules of what they may not call).

The token is verified exactly as the services verify it (common.auth: user_svc's JWKS,
pinned algorithms, issuer and audience, and the revocations user_svc publishes: a revoked
token is 401 TOKEN_REVOKED here already). The service verifies it again, as it trusts no
caller; both remember verified tokens until they expire, so the second check is a lookup.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

from flask import request
from werkzeug.exceptions import ServiceUnavailable

from common.auth import Claims, JwksCache, TokenVerifier, jwks_from_user_svc
from common.errors import Unauthenticated, Unavailable
from common.revocation import Feed, RevocationState, WatchRevocationsFeed
from common.settings import Settings
from edge_api.backends import Backends
from edge_api.contract import Route
from edge_api.errors import EdgeProblem


class EdgeAuthenticator:
    def __init__(self, verifier: TokenVerifier, revocations: _ProcessRevocations | None = None):
        self._verifier = verifier
        self._revocations = revocations

    @classmethod
    def from_user_svc(cls, backends: Backends, settings: Settings) -> EdgeAuthenticator:
        def fetch() -> list[dict]:
            # The process's current channel: channels do not survive fork (gunicorn).
            return jwks_from_user_svc(backends.channel("user"), settings.grpc_call_deadline)()

        keys = JwksCache(fetch, min_interval=settings.jwks_refresh_min_interval_seconds)
        # Always user_svc's stream, never the broker: the edge talks to user_svc anyway,
        # and only the services may reach RabbitMQ (the NetworkPolicies say so).
        internal_key = settings.secret("internal_key")
        revocations = _ProcessRevocations(
            lambda state: WatchRevocationsFeed(state, lambda: backends.channel("user"), internal_key).start()
        )
        verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        return cls(verifier, revocations)

    @classmethod
    def header_only(cls) -> EdgeAuthenticator:
        """For a contract with no user_svc to take keys from: refuses a missing or
        malformed Authorization header first, and leaves the signature to the service."""
        return cls(_ShapeOnly())  # type: ignore[arg-type]

    def check(self, route: Route) -> Claims | None:
        """The claims of the request's valid `Authorization: Bearer` token (what a rate
        limit counts, edge_api.limits), None on a public route (or with no keys to verify
        with, `header_only`). Raises EdgeProblem 401 (TOKEN_MISSING, TOKEN_INVALID,
        TOKEN_EXPIRED) when the token is not valid; 503 with Retry-After when user_svc's
        signing keys cannot be fetched."""
        if route.public:
            return None
        try:
            if self._revocations is not None:
                self._verifier.revocations = self._revocations.state()
            return self._verifier.verify_authorization(request.headers.get("Authorization"))
        except Unauthenticated as error:
            raise EdgeProblem(401, error.message, error.reason) from None
        except Unavailable as error:  # user_svc's keys out of reach: a dependency away
            retry_after = math.ceil(error.retry_after or 1)
            raise ServiceUnavailable(error.message, retry_after=retry_after) from None


class _ProcessRevocations:
    """The revocations this process has learned, its feed started on first use: granian
    forks its workers after the app is built, and a feed's thread and channel do not
    survive a fork (edge_api.backends opens channels the same way)."""

    def __init__(self, start: Callable[[RevocationState], Feed]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._pid = 0
        self._state = RevocationState()

    def state(self) -> RevocationState:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    state = RevocationState()
                    self._start(state)
                    self._state, self._pid = state, os.getpid()
        return self._state


class _ShapeOnly:
    def verify_authorization(self, authorization: str | None) -> None:
        """None: with no signature checked there is no user to count a limit against."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("TOKEN_MISSING", "An access token is required.")
