"""Access-token verification, the same in every service.

Tokens are signed by user_svc with an asymmetric key named by `kid`; every service
verifies them against user_svc's public keys (JWKS), cached by kid. Algorithms are
pinned by the key's type, so `none` and HS256-with-a-public-key never verify.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jwt

from common import base64url
from common.errors import Unauthenticated, Unavailable
from common.revocation import RevocationState, start_feed
from common.settings import Settings

log = logging.getLogger(__name__)

# The algorithm each key type may be used with; anything else is refused.
ALGORITHM_BY_KTY = {"OKP": "EdDSA", "RSA": "RS256"}
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
# After a failed JWKS fetch (user_svc away), how soon the next unknown kid may ask again.
RETRY_FAILED_FETCH_SECONDS = 1.0


@dataclass(frozen=True)
class Claims:
    user_id: int
    username: str
    email: str
    is_staff: bool
    token: str  # the raw bearer token, forwarded on calls made for this user
    # The login session (refresh family) the token belongs to, "" when it names none,
    # and the user's security epoch when it was issued (common.revocation).
    session_id: str = ""
    epoch: int = 0

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token}"


class JwksCache:
    """Public keys by kid, fetched with `fetch` and refetched on an unknown kid.

    An unknown kid refetches at most once per `min_interval` seconds, so a flood of
    tokens with made-up kids cannot turn into a flood of JWKS requests. While user_svc
    cannot be asked (the last fetch failed), an unknown kid is UNAVAILABLE, not an
    invalid token, and the fetch is retried after `RETRY_FAILED_FETCH_SECONDS`.
    """

    def __init__(self, fetch: Callable[[], Iterable[dict]], min_interval: float = 30.0) -> None:
        self._fetch = fetch
        self._min_interval = min_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._fetch_failed = False
        self._lock = threading.Lock()

    def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None:
            self._refresh_if_allowed()
            key = self._keys.get(kid)
            if key is None and self._fetch_failed:
                raise Unavailable("KEYS_UNAVAILABLE", "Access tokens cannot be checked now; try again.")
        return key

    def _refresh_if_allowed(self) -> None:
        with self._lock:
            interval = RETRY_FAILED_FETCH_SECONDS if self._fetch_failed else self._min_interval
            if time.monotonic() - self._fetched_at < interval:
                return
            self._fetched_at = time.monotonic()
            try:
                jwks = list(self._fetch())
            except Exception:
                log.warning("could not fetch the JWKS", exc_info=True)
                self._fetch_failed = True
                return
            self._fetch_failed = False
            self._keys = {
                jwk["kid"]: jwt.PyJWK(jwk) for jwk in jwks if jwk.get("kty") in ALGORITHM_BY_KTY
            }


class TokenVerifier:
    # Verified tokens are remembered until they expire: a client sends the same token
    # with every call for its 15 minutes, and a signature check costs more than the call.
    _MAX_REMEMBERED = 10_000

    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str,
        audience: str,
        revocations: RevocationState | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """`revocations`: checked on every call, remembered tokens included (a
        revocation must end a token its cache still holds); `on_close` stops its feed."""
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._verified: dict[str, tuple[Claims, float]] = {}
        self.revocations = revocations
        self._on_close = on_close

    def verify(self, token: str) -> Claims:
        """The claims of a valid token. Raises UNAUTHENTICATED TOKEN_INVALID,
        TOKEN_EXPIRED, TOKEN_REVOKED; UNAVAILABLE when keys or revocations are unknown."""
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            claims = remembered[0]
        else:
            claims, expires_at = self._verify_signed(token)
            if len(self._verified) >= self._MAX_REMEMBERED:
                self._verified.clear()  # bounded; the next calls verify again
            self._verified[token] = (claims, expires_at)
        if self.revocations is not None:
            self.revocations.check(user_id=claims.user_id, session_id=claims.session_id, epoch=claims.epoch)
        return claims

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def _verify_signed(self, token: str) -> tuple[Claims, float]:
        try:
            # PyJWT accepts a segment with `=` padding (RFC 7515 section 2 has none): one
            # token would have two spellings. Each segment must be canonical base64url.
            segments = token.split(".")
            if len(segments) != 3:
                raise ValueError("not a compact JWS")
            for segment in segments:
                base64url.decode(segment)
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid", "")))
            if key is None:
                raise _invalid("unknown signing key")
            payload = jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM_BY_KTY[key.key_type]],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS},
            )
            claims = Claims(
                user_id=int(payload["sub"]),
                username=str(payload.get("username", "")),
                email=str(payload.get("email", "")),
                is_staff=bool(payload.get("is_staff", False)),
                token=token,
                session_id=str(payload.get("sid", "")),
                epoch=int(payload.get("epoch", 0)),
            )
            return claims, float(payload["exp"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("TOKEN_EXPIRED", "The access token has expired.") from exc
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise _invalid(type(exc).__name__) from exc

    def verify_authorization(self, authorization: str | None) -> Claims:
        """Claims from an `authorization: Bearer <token>` metadata value."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("TOKEN_MISSING", "An access token is required.")
        return self.verify(token.strip())


def _invalid(why: str) -> Unauthenticated:
    log.info("token refused: %s", why)
    return Unauthenticated("TOKEN_INVALID", "The access token is not valid.")


def verifier_from_user_svc(channel, settings: Settings) -> TokenVerifier:  # noqa: ANN001
    """How services other than user_svc check tokens: against its JWKS, cached by kid,
    and the revocations it publishes (common.revocation; `close()` stops their feed)."""
    keys = JwksCache(
        jwks_from_user_svc(channel, settings.grpc_call_deadline),
        min_interval=settings.jwks_refresh_min_interval_seconds,
    )
    state = RevocationState()
    feed = start_feed(state, lambda: channel, settings)
    return TokenVerifier(
        keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
        revocations=state, on_close=feed.stop,
    )


def jwks_from_user_svc(channel, deadline: float) -> Callable[[], list[dict]]:  # noqa: ANN001
    """A JWKS fetcher for services other than user_svc (GetJwks is public)."""
    from google.protobuf.json_format import MessageToDict

    from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc

    stub = user_service_pb2_grpc.UserServiceStub(channel)

    def fetch() -> list[dict]:
        jwks = stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=deadline)
        return [MessageToDict(key, preserving_proto_field_name=True) for key in jwks.keys]

    return fetch
