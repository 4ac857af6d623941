"""Forged and unfit access tokens are all refused with UNAUTHENTICATED."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import bearer, failure
from user_svc.keys import SigningKey, development_key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def hs256(claims: dict, secret: bytes, kid: str) -> str:
    # Made by hand: PyJWT itself refuses to HMAC-sign with a PEM public key.
    body = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    return f"{body}.{b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())}"


@pytest.fixture
def victim(client):
    user = client.verified_user()
    return user, client.login(user.username).access


@pytest.fixture
def server_key(svc) -> SigningKey:
    return development_key(svc.settings.var_dir)


def claims_for(user, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "sub": str(user.id), "user_id": user.id, "username": user.username, "email": user.email,
        "is_staff": False, "iss": "taskmgr", "aud": "taskmgr", "iat": now, "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    return {**claims, **overrides}


def forged_tokens(user, valid: str, key: SigningKey) -> dict[str, str]:
    public_key = key.private_key.public_key()
    public_pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public_raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    header, payload, signature = valid.split(".")
    staff_payload = b64(json.dumps(claims_for(user, is_staff=True)).encode())
    now = int(time.time())
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims_for(user)) + ".",
        "HS256 with the old shared secret": hs256(claims_for(user), b"mysharedsecretkey123", key.kid),
        "HS256 with our public key": hs256(claims_for(user), public_pem, key.kid),
        "HS256 with our raw public key": hs256(claims_for(user), public_raw, key.kid),
        "expired": key.sign(claims_for(user, iat=now - 1000, exp=now - 100)),
        "wrong aud": key.sign(claims_for(user, aud="another-service")),
        "wrong iss": key.sign(claims_for(user, iss="someone-else")),
        "no jti": key.sign({k: v for k, v in claims_for(user).items() if k != "jti"}),
        "unknown kid": SigningKey.generate().sign(claims_for(user)),
        "tampered payload": f"{header}.{staff_payload}.{signature}",
        "truncated signature": f"{header}.{payload}.{signature[:-4]}",
        "garbage": "not.a.jwt",
    }


ATTACKS = [
    "alg none", "HS256 with the old shared secret", "HS256 with our public key",
    "HS256 with our raw public key", "expired", "wrong aud", "wrong iss", "no jti", "unknown kid",
    "tampered payload", "truncated signature", "garbage",
]


def test_the_genuine_token_is_accepted(client, victim):
    user, access = victim
    assert client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(access)).id == user.id


@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_or_unfit_tokens_are_refused(client, victim, server_key, attack):
    user, access = victim
    token = forged_tokens(user, access, server_key)[attack]
    error = failure(client.stub.GetProfile, pb.GetProfileRequest(), metadata=bearer(token))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.reason in {"TOKEN_INVALID", "TOKEN_EXPIRED"}


@pytest.mark.parametrize(
    "metadata", [[], [("authorization", "Basic dXNlcjpwYXNz")], [("authorization", "Bearer ")]]
)
def test_calls_without_a_bearer_token_are_refused(client, metadata):
    error = failure(client.stub.GetProfile, pb.GetProfileRequest(), metadata=metadata)
    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
