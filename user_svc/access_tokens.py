"""Access tokens: EdDSA (or RS256) JWTs signed with user_svc's key, and its JWKS."""

from __future__ import annotations

import time
import uuid

from common.auth import JwksCache, TokenVerifier
from common.revocation import RevocationState
from user_svc.keys import SigningKey


class AccessTokens:
    def __init__(
        self,
        key: SigningKey,
        *,
        previous_public_keys: list[dict[str, str]],
        issuer: str,
        audience: str,
        ttl_seconds: int,
    ) -> None:
        self._key = key
        self._previous = previous_public_keys
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(
        self, *, user_id: int, username: str, email: str, is_staff: bool, session_id: str = "", epoch: int = 0
    ) -> str:
        """A signed access token. `sid` names its login session (refresh family) and
        `epoch` the user's security epoch, so either can be revoked (common.revocation)."""
        # The wall clock, not the service's injectable one: verifiers (PyJWT) check
        # iat and exp against the wall clock too.
        now = int(time.time())
        return self._key.sign(
            {
                "sub": str(user_id),
                "user_id": user_id,
                "username": username,
                "email": email,
                "is_staff": is_staff,
                "iss": self._issuer,
                "aud": self._audience,
                "iat": now,
                "exp": now + self.ttl_seconds,
                "jti": uuid.uuid4().hex,
                **({"sid": session_id} if session_id else {}),
                "epoch": epoch,
            }
        )

    def jwks(self) -> list[dict[str, str]]:
        """The current key first, then the keys still valid during a rotation."""
        return [self._key.jwk(), *self._previous]

    def verifier(self, revocations: RevocationState | None = None) -> TokenVerifier:
        """Verifies against our own JWKS: no network, the same checks as other services."""
        return TokenVerifier(
            JwksCache(self.jwks), issuer=self._issuer, audience=self._audience, revocations=revocations
        )
