"""`@username` mentions in a comment's text: plain rules, no I/O.

A mention is `@` followed by a username as user_svc's contract defines it
(RegisterRequest.username: 3-150 of letters, digits and `_.-`), where the `@` starts
the text or follows a character that cannot be part of a username or an email
address's local part, so `bob@example.com` mentions nobody. A sentence's full stop
after a name ("thanks, @bob.") is not part of it. Names compare case-insensitively, as
user_svc looks them up.
"""

from __future__ import annotations

import re

from common.contract_rules import string_rules
from taskmgr.user.v1 import user_service_pb2

_RULES = string_rules(user_service_pb2.RegisterRequest.DESCRIPTOR, "username")
# The contract's pattern is ^[...]+$: its character class is what a name is made of.
_NAME_CHARS = _RULES.pattern.removeprefix("^").removesuffix("+$")
_MENTION = re.compile(rf"(?<![\w.@+-])@({_NAME_CHARS}+)")
# A comment asks user_svc about at most this many names (the rest are not mentions).
MAX_MENTIONS = 20


def mentioned_names(text: str) -> list[str]:
    """The distinct usernames `text` mentions, lower-cased, in order of first mention,
    at most MAX_MENTIONS; names of the wrong length are not mentions."""
    names: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip(".").lower()
        if _RULES.min_len <= len(name) <= _RULES.max_len:
            names.setdefault(name)
            if len(names) == MAX_MENTIONS:
                break
    return list(names)
