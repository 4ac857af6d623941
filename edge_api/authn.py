"""Authentication first: the edge verifies the bearer token of every non-public route
before it reads anything else of the request, so a request without a valid token is 401
whatever else is wrong with it (rest-contract.md, "Authentication comes first"; a
stranger learns nothing about the validation rules of what they may not call).

The token is verified exactly as the services verify it (common.auth: user_svc's JWKS,
pinned algorithms, issuer and audience). The service verifies it again, as it trusts no
caller; both remember verified tokens until they expire, so the second check is a lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request

from common.auth import JwksCache, TokenVerifier, jwks_from_user_svc
from common.errors import Unauthenticated
from common.settings import Settings
from edge_api.backends import Backends
from edge_api.contract import Route
from edge_api.errors import EdgeProblem


class _RecordingFetch:
    """Fetches user_svc's JWKS over the process's current channel (channels do not
    survive fork) and remembers whether the last attempt failed."""

    def __init__(self, backends: Backends, deadline: float) -> None:
        self._backends, self._deadline = backends, deadline
        self.failed = False

    def __call__(self) -> list[dict]:
        try:
            keys = jwks_from_user_svc(self._backends.channel("user"), self._deadline)()
        except Exception:
            self.failed = True
            raise
        self.failed = False
        return keys


class EdgeAuthenticator:
    def __init__(self, verifier: TokenVerifier, keys_unreachable: Callable[[], bool] = lambda: False):
        """`keys_unreachable()` tells a token signed with a key we could not fetch (user_svc
        away: 503) from a token signed with a key that does not exist (401)."""
        self._verifier = verifier
        self._keys_unreachable = keys_unreachable

    @classmethod
    def from_user_svc(cls, backends: Backends, settings: Settings) -> EdgeAuthenticator:
        fetch = _RecordingFetch(backends, settings.grpc_call_deadline)
        keys = JwksCache(fetch, min_interval=settings.jwks_refresh_min_interval_seconds)
        verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        return cls(verifier, lambda: fetch.failed)

    @classmethod
    def header_only(cls) -> EdgeAuthenticator:
        """For a contract with no user_svc to take keys from: refuses a missing or
        malformed Authorization header first, and leaves the signature to the service."""
        return cls(_ShapeOnly())  # type: ignore[arg-type]

    def check(self, route: Route) -> None:
        """Raises EdgeProblem 401 (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED) unless the
        route is public or the request carries a valid `Authorization: Bearer` token;
        503 when the signing keys cannot be fetched."""
        if route.public:
            return
        try:
            self._verifier.verify_authorization(request.headers.get("Authorization"))
        except Unauthenticated as error:
            if error.reason == "TOKEN_INVALID" and self._keys_unreachable():
                raise EdgeProblem(
                    503, "The service is temporarily unavailable; try again later.", "SERVICE_UNAVAILABLE"
                ) from None
            raise EdgeProblem(401, error.message, error.reason) from None


class _ShapeOnly:
    def verify_authorization(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("TOKEN_MISSING", "An access token is required.")
