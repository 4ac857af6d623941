"""Page sizes and opaque page tokens (AIP-158).

A token carries the keyset position of the last row of a page, signed with a server
key and bound to the query it came from: a tampered token, or one from another query,
is refused with INVALID_ARGUMENT instead of silently returning the wrong page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from common import base64url
from common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAC_BYTES = 16


def page_size(requested: int) -> int:
    """0 means the default; larger than the maximum is clamped; negative is an error."""
    if requested < 0:
        raise InvalidArgument(
            "INVALID_PAGE_SIZE", "page_size must not be negative.",
            fields={"page_size": "must be 0 or more"},
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, position: Any, query: Any) -> str:
        body = json.dumps({"p": position, "q": _fingerprint(query)}, separators=(",", ":")).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64url.encode(mac + body)

    def decode(self, token: str, query: Any) -> Any:
        """The position in `token`, or None for an empty token (the first page)."""
        if not token:
            return None
        try:
            raw = base64url.decode(token)  # one spelling per token, or ValueError
            mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
            expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            content = json.loads(body)
            if content["q"] != _fingerprint(query):
                raise ValueError("token of another query")
            return content["p"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(
                "INVALID_PAGE_TOKEN", "page_token is not valid for this query.",
                fields={"page_token": "invalid or from another query"},
            ) from exc


class QueryKey(str):
    """A query's fingerprint, computed once (`query_key`) when one request both reads and
    writes a token for the same query: the canonical JSON of a task list's query and its
    hash were a twentieth of task_svc's CPU per list page."""


def query_key(query: Any) -> QueryKey:
    """What `PageTokens.encode` and `decode` accept in place of `query`, with the same
    tokens as `query` itself."""
    return QueryKey(_fingerprint(query))


def _fingerprint(query: Any) -> str:
    if isinstance(query, QueryKey):
        return query
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
