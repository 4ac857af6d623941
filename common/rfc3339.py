"""The one parser of date-times on the wire: RFC 3339 section 5.6, strictly.

Bodies, query filters and headers at the edge and the services' own string filters all
parse here, so a value means the same everywhere. Why not `datetime.fromisoformat` or
`Timestamp.FromJsonString`: both accept more than RFC 3339 (ISO 8601 week dates, no
offset, full-width digits, an offset of `+00:90`), and neither bounds the result to the
range a google.protobuf.Timestamp holds. A library parser (ciso8601) would still give
microseconds only, where a Timestamp carries nanoseconds.

Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` with ASCII digits; `T` and
`Z` in either case (RFC 3339 section 5.6, NOTE); 1 to 9 fraction digits (a Timestamp's
precision); offsets up to 23:59; `-00:00` as UTC (section 4.3). Refused: a leap second
(`:60`, which neither Python nor a Timestamp represents), an impossible day (Feb 30),
and any instant outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z once
moved to UTC (the Timestamp range, also Python's).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2}))"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
EXAMPLE = "2030-01-31T12:00:00Z"
PROBLEM = f"must be an RFC 3339 date-time, e.g. {EXAMPLE}"


class Instant(NamedTuple):
    """A parsed date-time: seconds since the Unix epoch (UTC) and nanoseconds (0-999999999)."""

    seconds: int
    nanos: int

    def to_datetime(self) -> dt.datetime:
        """As an aware UTC datetime (microseconds: the nanoseconds below are dropped)."""
        return _EPOCH + dt.timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)


def parse(text: str) -> Instant:
    """The instant `text` names. Raises ValueError (message: PROBLEM or a precise reason)
    for anything RFC 3339 section 5.6 does not allow or a Timestamp cannot hold."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(PROBLEM)
    part = {name: int(value) for name, value in match.groupdict().items() if value and value.isdigit()}
    if part["hour"] > 23 or part["minute"] > 59 or part["second"] > 59:
        raise ValueError("must be a valid time of day (00:00:00 to 23:59:59; no leap second)")
    if not match["utc"] and (part["off_hour"] > 23 or part["off_minute"] > 59):
        raise ValueError("must have a valid offset (-23:59 to +23:59)")
    try:
        local = dt.datetime(part["year"], part["month"], part["day"], tzinfo=dt.UTC)
    except ValueError:
        raise ValueError("must be a valid calendar date") from None
    offset = 0 if match["utc"] else (part["off_hour"] * 60 + part["off_minute"]) * 60
    if match["sign"] == "-":
        offset = -offset
    # Whole seconds as integers: no datetime arithmetic that overflows near year 1 or 9999.
    seconds = (
        (local - _EPOCH) // dt.timedelta(seconds=1)
        + part["hour"] * 3600 + part["minute"] * 60 + part["second"] - offset
    )
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError("must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    fraction = match["fraction"] or ""
    return Instant(seconds, int(fraction.ljust(9, "0")) if fraction else 0)


def parse_datetime(text: str) -> dt.datetime:
    """`parse`, as an aware UTC datetime (microsecond precision)."""
    return parse(text).to_datetime()
