"""The keys that sign access tokens, and their public JWKS.

Production reads the private key from JWT_PRIVATE_KEY_FILE (PEM, Ed25519 or RSA);
development generates an Ed25519 key under var/ on first start. The kid is the key's
RFC 7638 thumbprint, so it changes exactly when the key does. Previous public keys can
be served alongside during a rotation (JWT_PREVIOUS_PUBLIC_KEY_FILES).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from common.auth import ALGORITHM_BY_KTY


@dataclass(frozen=True)
class SigningKey:
    private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "RS256"

    @property
    def kid(self) -> str:
        return public_jwk(self.private_key.public_key())["kid"]

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key())

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate())


# The public members of each key type, nothing else (no private member can leak, and
# no member of another type is sent empty): RFC 8037 section 2 (OKP), RFC 7518 6.3.1 (RSA).
_PUBLIC_MEMBERS = {"OKP": ("kty", "crv", "x"), "RSA": ("kty", "n", "e")}


def public_jwk(public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> dict[str, str]:
    """The key as a JWK: its type's public members plus `kid` (RFC 7638), `use`, `alg`."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        jwk = json.loads(OKPAlgorithm.to_jwk(public_key))
    else:
        jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    members = {name: jwk[name] for name in _PUBLIC_MEMBERS[jwk["kty"]]}
    return {**members, "kid": _thumbprint(jwk), "use": "sig", "alg": ALGORITHM_BY_KTY[jwk["kty"]]}


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order."""
    members = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_private_key(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: the signing key must be Ed25519 or RSA")
    return SigningKey(key)


def development_key(var_dir: Path) -> SigningKey:
    """The development signing key under var_dir, generated on first use."""
    path = var_dir / "jwt_signing_key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = SigningKey.generate().private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        except FileExistsError:
            pass  # another process generated it first; use theirs
    return load_private_key(path)


def load_public_jwks(paths: list[Path]) -> list[dict[str, str]]:
    keys = []
    for path in paths:
        public_key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(public_key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise ValueError(f"{path}: a previous key must be Ed25519 or RSA")
        keys.append(public_jwk(public_key))
    return keys


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose from a server secret (HMAC-SHA256 as the PRF, as in HKDF-Expand,
    RFC 5869), so one secret never keys two uses directly."""
    return hmac.new(secret, f"taskmgr:{purpose}".encode(), hashlib.sha256).digest()
