"""Login backoff, in plain Python (no I/O; the clock is passed in).

Failures are counted per username and per client IP. The first 5 within an hour cost
nothing; each one after that doubles the wait before the next try (30 s, 1 min, 2 min,
... capped at 15 min). There is no permanent lockout: failures older than an hour stop
counting, and a successful login clears the username's count (not the IP's, or an
attacker could reset it by logging into an account of their own between guesses).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

FREE_FAILURES = 5
FIRST_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 15 * 60.0
WINDOW = dt.timedelta(hours=1)


def delay_after(failures: int) -> float:
    """Seconds to wait after the `failures`-th failure in the window."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES))


def retry_after(failures: Sequence[dt.datetime], now: dt.datetime) -> float | None:
    """Seconds before the next try is allowed, or None when it is allowed now."""
    recent = [at for at in failures if at > now - WINDOW]
    if not recent:
        return None
    wait_until = max(recent) + dt.timedelta(seconds=delay_after(len(recent)))
    remaining = (wait_until - now).total_seconds()
    return remaining if remaining > 0 else None
