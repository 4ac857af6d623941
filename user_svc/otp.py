"""Rules of the emailed one-time codes, in plain Python (no I/O; the clock is passed in).

- 6 digits from `secrets`; only an HMAC of (user, purpose, code) is stored, so a code
  is bound to its user and purpose and a database leak reveals no code.
- A code lives 10 minutes, is used once, and 5 wrong tries burn it. That per-code
  budget is the whole guessing bound: a new code opens a new budget, and codes are
  capped per hour, so at most 5 x (1 + 5) = 30 guesses an hour reach one address
  (a 30 in 10^6 chance). There is no per-address budget beyond it: wrong tries for an
  address with no open code cost its owner nothing, so a stranger cannot block
  verification for somebody else, before or after they register (docs/security.md).
- A new code may be asked for an address (registered or not) at most once per 60 s and
  5 times per hour per purpose; registering sends one more.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

CODE_DIGITS = 6
LIFETIME = dt.timedelta(minutes=10)
WRONG_TRIES_PER_CODE = 5
RESEND_COOLDOWN = dt.timedelta(seconds=60)
SENDS_PER_HOUR = 5
REQUEST_WINDOW = dt.timedelta(hours=1)

_CODE_SHAPE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


class Purpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def well_formed(code: str) -> bool:
    return bool(_CODE_SHAPE.fullmatch(code))


class CodeMac:
    """HMAC-SHA256 of a code bound to its user and purpose, under the server's key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, user_id: int, purpose: Purpose, code: str) -> str:
        message = f"{user_id}:{purpose.value}:{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, stored_mac: str, user_id: int, purpose: Purpose, code: str) -> bool:
        return hmac.compare_digest(stored_mac, self.of(user_id, purpose, code))


@dataclass(frozen=True)
class CodeState:
    expires_at: dt.datetime
    wrong_attempts: int
    closed: bool

    def usable(self, now: dt.datetime) -> bool:
        """Not expired, not used or replaced, not burnt by wrong tries."""
        return not self.closed and now < self.expires_at and self.wrong_attempts < WRONG_TRIES_PER_CODE


def request_retry_after(previous: Sequence[dt.datetime], now: dt.datetime) -> float | None:
    """Seconds until a new code may be asked for, given when the earlier requests for the
    same address and purpose were; None when it may be now."""
    recent = sorted(at for at in previous if at > now - REQUEST_WINDOW)
    if len(recent) >= SENDS_PER_HOUR:
        frees_at = recent[len(recent) - SENDS_PER_HOUR] + REQUEST_WINDOW
    elif recent and now - recent[-1] < RESEND_COOLDOWN:
        frees_at = recent[-1] + RESEND_COOLDOWN
    else:
        return None
    return (frees_at - now).total_seconds()
