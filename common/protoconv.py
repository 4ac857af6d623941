"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    # Timestamp.FromDatetime does the same in several times the time (it is on every task).
    seconds = (value - _EPOCH) // dt.timedelta(seconds=1)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=value.microsecond * 1000)


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)
