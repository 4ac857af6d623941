"""Login backoff, in plain Python (no I/O; the clock is passed in).

Failed logins are counted under three keys, each with its own number of free failures
within an hour; past it, each failure doubles the wait before the next try under that
key (30 s, 1 min, 2 min, ... capped at 15 min). Keyed so that nobody can lock somebody
else out (OWASP ASVS v4 2.2.1, NIST SP 800-63B section 5.2.2; docs/security.md):

- PAIR, one username from one client address: 5 free. The usual guesser, and the owner
  who mistyped; it touches nobody else, neither the owner elsewhere nor the neighbours
  behind the same address.
- ADDRESS, one client address across usernames: 20 free. Spraying one password over
  many accounts; one person failing on their own account stops at PAIR long before.
- ACCOUNT, one username from every address: 100 free. A distributed guesser (a new
  address per try) is still bounded. It does not apply to a client the account has
  logged in from before (user_svc.known_addresses, the last 5): strangers with many
  addresses can reach 100 on purpose, and would otherwise keep the owner out with one
  failure per wait (OWASP Authentication Cheat Sheet, "Account Lockout"). From a new
  client the owner is subject to it, like the guesser.

A client is its address's common.client_ip.limit_key: an IPv6 host by its /64.

There is no permanent lockout: failures older than an hour stop counting. A success
clears its PAIR only: clearing ADDRESS would let an attacker reset it by logging into an
account of their own between guesses, and clearing ACCOUNT would give a distributed
guesser 100 new tries each time the owner logs in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

FIRST_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 15 * 60.0
WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Counter:
    """What a failure is counted against, and how many are free in the window."""

    prefix: str
    free_failures: int


PAIR = Counter("login-pair", 5)
ADDRESS = Counter("login-ip", 20)
ACCOUNT = Counter("login-user", 100)


def delay_after(failures: int, free: int = PAIR.free_failures) -> float:
    """Seconds to wait after the `failures`-th failure in the window."""
    if failures < free:
        return 0.0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** min(failures - free, 32))


def retry_after(
    failures: Sequence[dt.datetime], now: dt.datetime, free: int = PAIR.free_failures
) -> float | None:
    """Seconds before the next try is allowed, or None when it is allowed now."""
    recent = [at for at in failures if at > now - WINDOW]
    if not recent:
        return None
    wait_until = max(recent) + dt.timedelta(seconds=delay_after(len(recent), free))
    remaining = (wait_until - now).total_seconds()
    return remaining if remaining > 0 else None
