"""The JWKS serves exactly the members of each key type (RFC 8037 section 2 for
Ed25519, RFC 7518 section 6.3.1 for RSA), in gRPC and in the edge's JSON alike."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from google.protobuf.json_format import MessageToDict

from edge_api.json_codec import message_to_json
from taskmgr.user.v1 import user_service_pb2 as pb
from user_svc.access_tokens import AccessTokens
from user_svc.keys import SigningKey, public_jwk
from user_svc.service import UserService

OKP_MEMBERS = {"kty", "crv", "x", "kid", "use", "alg"}
RSA_MEMBERS = {"kty", "n", "e", "kid", "use", "alg"}


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("private_key", "members", "alg"),
    [(ed25519.Ed25519PrivateKey.generate(), OKP_MEMBERS, "EdDSA"), (_rsa(), RSA_MEMBERS, "RS256")],
    ids=["okp", "rsa"],
)
def test_each_key_type_has_exactly_its_members(private_key, members, alg):
    jwk = public_jwk(private_key.public_key())
    assert set(jwk) == members
    assert all(jwk.values()), jwk  # nothing empty
    assert jwk["alg"] == alg and jwk["use"] == "sig"
    # Usable as is by a standard verifier.
    token = SigningKey(private_key).sign({"sub": "1"})
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"sub": "1"}


def test_get_jwks_over_grpc_and_rest_sends_no_member_of_another_type():
    previous = public_jwk(_rsa().public_key())
    tokens = AccessTokens(
        SigningKey.generate(), previous_public_keys=[previous], issuer="i", audience="a", ttl_seconds=60
    )
    servicer = UserService(None, None, None, tokens)  # GetJwks needs only the keys
    reply = servicer.GetJwks(pb.GetJwksRequest(), None)

    over_grpc = [MessageToDict(key) for key in reply.keys]
    over_rest = message_to_json(reply)["keys"]
    for keys in (over_grpc, over_rest):
        assert [set(key) for key in keys] == [OKP_MEMBERS, RSA_MEMBERS]
        assert keys[1] == previous
