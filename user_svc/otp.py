"""Rules of the emailed one-time codes, in plain Python (no I/O; the clock is passed in).

- 6 digits from `secrets`; only an HMAC of (user, purpose, code) is stored, so a code
  is bound to its user and purpose and a database leak reveals no code.
- A code lives 10 minutes, is used once, and 5 wrong tries burn it.
- 10 wrong tries per submitted address and purpose in 24 h block that address (the
  budget counts failures, not codes, so asking for a new code does not reset it).
- A new code at most once per 60 s and 5 times per hour per address and purpose.
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
GUESS_BUDGET = 10
GUESS_WINDOW = dt.timedelta(hours=24)
RESEND_COOLDOWN = dt.timedelta(seconds=60)
SENDS_PER_HOUR = 5

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


def guess_retry_after(failures: Sequence[dt.datetime], now: dt.datetime) -> float | None:
    """Seconds until the address may try again, or None while it is within its budget.

    `failures` are the address's wrong tries; those older than the window do not count.
    """
    recent = sorted(at for at in failures if at > now - GUESS_WINDOW)
    if len(recent) < GUESS_BUDGET:
        return None
    # Blocked until enough of the oldest failures leave the window.
    frees_at = recent[len(recent) - GUESS_BUDGET] + GUESS_WINDOW
    return (frees_at - now).total_seconds()


def may_send(previous_sends: Sequence[dt.datetime], now: dt.datetime) -> bool:
    """Whether a new code may be sent, given when the earlier ones were."""
    recent = [at for at in previous_sends if at > now - dt.timedelta(hours=1)]
    if len(recent) >= SENDS_PER_HOUR:
        return False
    return not recent or now - max(recent) >= RESEND_COOLDOWN
