"""Rules of refresh tokens, in plain Python (no I/O; the clock is passed in).

A refresh token is 256 random bits, stored only as its SHA-256, valid 7 days, and used
up when it is exchanged (rotation). Every token rotated from one login forms a family.

Presenting a token that was already rotated means either two requests of one client
raced (two tabs refreshing at once) or the token was stolen. Within
`refresh_reuse_grace_seconds` of its rotation it is treated as the race: it answers
again with the SAME successor, never a new branch of the family (OWASP ASVS v4 3.5 /
the OAuth 2.0 Security BCP, RFC 9700 section 4.14.2: one live refresh token per grant),
so eight concurrent refreshes leave one live token, not eight. The successor is an HMAC
of the presented token under a server key, so it can be answered again without storing
it, and nobody without the key can compute it. A successor already rotated or revoked
is not answered again. After the grace it is treated as theft: the whole family is
revoked, the thief's copy and the owner's alike, and the owner logs in again.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass


class Verdict(enum.Enum):
    ROTATE = "rotate"  # a live token: exchange it
    GRACE = "grace"  # rotated moments ago: a concurrent refresh, answer it too
    REUSED = "reused"  # rotated long ago: revoke the family
    INVALID = "invalid"  # expired or revoked


@dataclass(frozen=True)
class TokenState:
    expires_at: dt.datetime
    rotated_at: dt.datetime | None
    revoked_at: dt.datetime | None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def successor(key: bytes, token: str) -> str:
    """The token that replaces `token` when it is rotated: 256 bits, the same every time
    for the same token, unpredictable without `key` (HMAC-SHA256, RFC 2104)."""
    mac = hmac.new(key, b"refresh-successor\0" + token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def new_family_id() -> str:
    return secrets.token_hex(16)


def judge(state: TokenState, now: dt.datetime, grace: dt.timedelta) -> Verdict:
    if state.revoked_at is not None or now >= state.expires_at:
        return Verdict.INVALID
    if state.rotated_at is None:
        return Verdict.ROTATE
    if now - state.rotated_at <= grace:
        return Verdict.GRACE
    return Verdict.REUSED
