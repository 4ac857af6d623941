"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2


def to_timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)
