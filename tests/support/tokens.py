"""A token issuer for tests of services other than user_svc.

It signs exactly as user_svc does (user_svc.keys) and serves its key as the JWKS, so
task_svc and notify_svc can be tested over real gRPC without a running user_svc.
"""

from __future__ import annotations

import time
import uuid

from common.auth import JwksCache, TokenVerifier
from user_svc.keys import SigningKey

ISSUER = "taskmgr"
AUDIENCE = "taskmgr"


class TestIssuer:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.key = SigningKey.generate()

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(JwksCache(lambda: [self.key.jwk()]), issuer=ISSUER, audience=AUDIENCE)

    def token(self, user_id: int, *, username: str = "", is_staff: bool = False, ttl: int = 900) -> str:
        now = int(time.time())
        return self.key.sign(
            {
                "sub": str(user_id), "user_id": user_id, "username": username or f"user{user_id}",
                "email": f"user{user_id}@example.com", "is_staff": is_staff,
                "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex,
            }
        )

    def metadata(self, user_id: int, **kwargs) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token(user_id, **kwargs)}")]
