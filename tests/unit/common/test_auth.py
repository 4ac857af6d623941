import base64
import time

import pytest

from common.auth import JwksCache, TokenVerifier
from common.errors import Unauthenticated
from tests.support.tokens import AUDIENCE, ISSUER, TestIssuer


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch):
    issuer = TestIssuer()
    verifier = TokenVerifier(JwksCache(lambda: [issuer.key.jwk()]), issuer=ISSUER, audience=AUDIENCE)
    token = issuer.token(7, ttl=1)
    assert verifier.verify(token).user_id == 7
    with monkeypatch.context() as patched:
        patched.setattr("jwt.decode", lambda *a, **k: pytest.fail("a remembered token is decoded again"))
        assert verifier.verify(token).user_id == 7

    time.sleep(2)  # past `exp` on the wall clock PyJWT reads
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    assert caught.value.reason == "TOKEN_EXPIRED"


def test_a_tampered_copy_of_a_remembered_token_is_still_refused():
    issuer = TestIssuer()
    verifier = issuer.verifier()
    token = issuer.token(7)
    verifier.verify(token)
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01  # one flipped bit in the middle of the signature
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{payload}.{tampered}")
