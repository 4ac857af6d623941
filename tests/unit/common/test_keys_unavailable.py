"""A valid token while user_svc (its JWKS) is away is UNAVAILABLE, never "invalid"; the
keys are fetched again within a second once user_svc is back."""

from __future__ import annotations

import grpc
import pytest

from common import auth
from common.auth import JwksCache, TokenVerifier
from common.errors import Unauthenticated, Unavailable
from tests.support.tokens import AUDIENCE, ISSUER, TestIssuer


class UserSvc:
    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer, self.up, self.fetches = issuer, False, 0

    def jwks(self) -> list[dict]:
        self.fetches += 1
        if not self.up:
            raise ConnectionRefusedError(111, "user_svc is away")  # what a dead channel amounts to
        return [self.issuer.key.jwk()]


def test_a_valid_token_is_unavailable_while_the_keys_cannot_be_fetched(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    issuer = TestIssuer()
    user_svc = UserSvc(issuer)
    verifier = TokenVerifier(JwksCache(user_svc.jwks, min_interval=30.0), issuer=ISSUER, audience=AUDIENCE)
    token = issuer.token(7)

    with pytest.raises(Unavailable) as caught:
        verifier.verify(token)
    assert (caught.value.code, caught.value.retry_after) == (grpc.StatusCode.UNAVAILABLE, 1.0)

    user_svc.up = True
    clock[0] += 0.5
    with pytest.raises(Unavailable):  # not asked again yet: a flood of calls cannot hammer user_svc
        verifier.verify(token)
    assert user_svc.fetches == 1
    clock[0] += auth.RETRY_FAILED_FETCH_SECONDS  # well inside min_interval's 30 s
    assert verifier.verify(token).user_id == 7
    assert user_svc.fetches == 2


def test_an_unknown_key_is_still_an_invalid_token_when_user_svc_answers():
    issuer, stranger = TestIssuer(), TestIssuer()
    user_svc = UserSvc(issuer)
    user_svc.up = True
    verifier = TokenVerifier(JwksCache(user_svc.jwks), issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(Unauthenticated):
        verifier.verify(stranger.token(7))
