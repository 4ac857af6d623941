"""Datetimes into reply Timestamps (common.protoconv): exact over the whole range."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from common.protoconv import from_timestamp, set_timestamp, to_timestamp

AWARE = st.datetimes(
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(dt.UTC),
)


@given(AWARE)
def test_set_in_place_is_exact_and_reads_back(value):
    stamp = timestamp_pb2.Timestamp()
    set_timestamp(stamp, value)
    assert stamp == to_timestamp(value)
    assert 0 <= stamp.nanos < 1_000_000_000
    assert from_timestamp(stamp) == value


def test_before_1970_is_negative_seconds_and_positive_nanos():
    stamp = timestamp_pb2.Timestamp()
    set_timestamp(stamp, dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC))
    assert (stamp.seconds, stamp.nanos) == (-1, 500_000_000)  # google/protobuf/timestamp.proto
    # The float that value.timestamp() gives would lose the microseconds far from 1970.
    far = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    set_timestamp(stamp, far)
    assert (stamp.seconds, stamp.nanos) == (253402300799, 999_999_000)
