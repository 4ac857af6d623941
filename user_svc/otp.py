"""Rules of the emailed one-time codes, in plain Python (no I/O; the clock is passed in).

- 6 digits from `secrets`; only an HMAC of (user, purpose, code) is stored, so a code
  is bound to its user and purpose and a database leak reveals no code.
- A code lives 10 minutes and is used once; using one closes every open code of the
  user and purpose.
- Guessing is bounded without handing strangers a lever (OWASP ASVS v4 2.2.1, NIST SP
  800-63B section 5.2.2). A per-code budget alone (5 wrong tries burn it) let anybody
  burn the owner's code with five wrong guesses, and a new code closing the old one let
  anybody cancel it with a resend; with the request cooldown, a stranger could keep the
  owner from ever verifying or resetting. So:
  * A new code is added beside the open ones; it never closes them. The code the owner
    has in the mailbox stays good for its 10 minutes whoever asks for more.
  * Wrong tries count per (code, client address), the address the edge vouches for
    (common.context.client_ip_var), as login backoff does (backoff.py): 5 wrong tries
    from one address burn the code for that address only. The owner on their own
    address still verifies while a stranger elsewhere guesses.
  * Over all addresses a code takes at most 50 wrong tries, then it is burnt for
    everybody. That is the bound for a distributed guesser: at most 50 guesses reach a
    code, and at most 1 + 5 = 6 codes are sent to an address an hour, so at most 300
    guesses an hour (a 3 in 10,000 chance per hour; a guess checked against several
    open codes is charged to each). Burning a code for everybody now takes 10 vouched
    addresses, not one, and the owner's next code starts a new budget.
  Wrong tries for an address with no open code cost its owner nothing, so a stranger
  cannot block verification for somebody else, before or after they register
  (docs/security.md).
- A new code may be asked for an address (registered or not) at most once per 60 s and
  5 times per hour per purpose; registering sends one more. Every such code goes to the
  owner's mailbox, so a stranger's requests give the owner codes rather than take one.
  What a stranger can still do: spend the 5 requests early in an hour, so the owner
  has those codes for 10 minutes and then waits for the hour to pass for another.
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
# Wrong tries one client address may spend on one code; over all addresses, per code.
WRONG_TRIES_PER_ADDRESS = 5
WRONG_TRIES_PER_CODE = 50
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
        """Not expired, not used, not burnt by wrong tries over all addresses."""
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


def address_may_try(wrong_tries_from_address: int) -> bool:
    """Whether a client address that made this many wrong tries at a code may try it again."""
    return wrong_tries_from_address < WRONG_TRIES_PER_ADDRESS
