"""Unpadded base64url (RFC 4648 section 5; RFC 7515 section 2 for JWS), one spelling only.

The standard library's decoders skip characters outside the alphabet and ignore the
padding bits of the last character, so many strings decode to the same bytes. A signed
token decoded that way stays valid with characters inserted or its last character
changed: one token would have many spellings, and logs, caches, deny-lists and replay
checks that compare tokens as strings would be fooled. Signed tokens are decoded here,
before their signature is checked.
"""

from __future__ import annotations

import base64
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """The bytes `text` spells. Raises ValueError unless `text` is exactly what `encode`
    gives for them: alphabet characters only, no padding, zero padding bits."""
    if not _ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if encode(data) != text:
        raise ValueError("not the canonical base64url of its bytes (padding bits set)")
    return data
