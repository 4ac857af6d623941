"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from common import rfc3339
from common.errors import invalid

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


_SECOND = dt.timedelta(seconds=1)


def to_timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    # Timestamp.FromDatetime does the same in several times the time (it is on every task).
    return timestamp_pb2.Timestamp(seconds=(value - _EPOCH) // _SECOND, nanos=value.microsecond * 1000)


def set_timestamp(target: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    """Sets the Timestamp field `target` (e.g. `message.created_at`) to the aware datetime
    `value`, in place: cheaper than building a Timestamp the message then copies. Exact
    (integer arithmetic, floor division, so 1969 has negative seconds and positive nanos
    as google/protobuf/timestamp.proto says), unlike `value.timestamp()`, a float."""
    target.seconds = (value - _EPOCH) // _SECOND
    target.nanos = value.microsecond * 1000


def from_timestamp(stamp: timestamp_pb2.Timestamp, field: str = "timestamp") -> dt.datetime:
    """An aware UTC datetime (microseconds; finer nanos are dropped).

    A Timestamp a direct gRPC caller filled outside its documented range (seconds
    within 0001-01-01..9999-12-31 UTC, nanos 0..999,999,999; google/protobuf/timestamp.proto)
    is the caller's fault: INVALID_ARGUMENT naming `field`, never an internal error.
    """
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (rfc3339.MIN_SECONDS <= seconds <= rfc3339.MAX_SECONDS and 0 <= nanos <= 999_999_999):
        raise invalid({field: "A Timestamp between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z."})
    return rfc3339.Instant(seconds, nanos).to_datetime()
