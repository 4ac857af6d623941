"""The one RFC 3339 parser (common.rfc3339) and Timestamps that cannot become datetimes."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from common import rfc3339
from common.errors import InvalidArgument
from common.protoconv import from_timestamp

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-31T12:00:00Z", dt.datetime(2030, 1, 31, 12, tzinfo=UTC)),
        ("2030-01-31t12:00:00z", dt.datetime(2030, 1, 31, 12, tzinfo=UTC)),  # section 5.6 NOTE
        ("2030-01-31T12:00:00+05:30", dt.datetime(2030, 1, 31, 6, 30, tzinfo=UTC)),
        ("2030-01-31T12:00:00-00:00", dt.datetime(2030, 1, 31, 12, tzinfo=UTC)),  # section 4.3
        ("2030-01-31T12:00:00.25Z", dt.datetime(2030, 1, 31, 12, 0, 0, 250_000, tzinfo=UTC)),
        ("2028-02-29T00:00:00Z", dt.datetime(2028, 2, 29, tzinfo=UTC)),
        ("0001-01-01T00:00:00-01:00", dt.datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999999Z", dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    ],
)
def test_valid_date_times(text, expected):
    assert rfc3339.parse_datetime(text) == expected


def test_nanoseconds_are_kept_for_a_timestamp():
    assert rfc3339.parse("2030-01-01T00:00:00.123456789Z").nanos == 123_456_789


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-01T00:00:00+00:90",  # minutes of the offset past 59 (was 22:30 the day before)
        "2030-01-01T00:00:00+24:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC (was an OverflowError, a 500)
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "2030-02-29T00:00:00Z",
        "2030-13-01T00:00:00Z",
        "2030-01-01T24:00:00Z",
        "2030-01-01T00:00:60Z",  # a leap second: no datetime, no Timestamp holds it
        "2030-01-01T00:00:00",  # no offset
        "2030-01-01 00:00:00Z",
        "2030-01-01T00:00Z",
        "2030-W01-1T00:00:00Z",  # ISO 8601, not RFC 3339 (fromisoformat takes it)
        "20300101T000000Z",
        "\uff12\uff10\uff13\uff10-01-01T00:00:00Z",  # full-width digits (protobuf takes them)
        "\u0662\u0660\u0663\u0660-01-01T00:00:00Z",  # Arabic-Indic digits
        " 2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00Z\n",
        "2030-01-01T00:00:00.Z",
        "2030-01-01T00:00:00.1234567890Z",  # finer than a Timestamp
        "+2030-01-01T00:00:00Z",
        "",
    ],
)
def test_anything_else_is_a_value_error(text):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by what is wrong
        rfc3339.parse(text)


# RFC 3339 offsets are whole minutes, less than a day.
_OFFSETS = st.integers(-1439, 1439).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_OFFSETS))
def test_any_aware_datetime_round_trips(value):
    assert rfc3339.parse_datetime(value.isoformat(timespec="microseconds")) == value


@given(st.text(alphabet="0123456789-+:.TZtz \u0660\uff10", max_size=40))
def test_any_text_parses_or_raises_value_error(text):
    try:
        instant = rfc3339.parse(text)
    except ValueError:
        return
    assert rfc3339.MIN_SECONDS <= instant.seconds <= rfc3339.MAX_SECONDS
    assert 0 <= instant.nanos < 10**9
    instant.to_datetime()  # never overflows


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(rfc3339.MIN_SECONDS - 1, 0), (rfc3339.MAX_SECONDS + 1, 0), (0, -1), (0, 10**9), (-(2**63), 0)],
)
def test_a_timestamp_out_of_range_is_invalid_argument(seconds, nanos):
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)

    with pytest.raises(InvalidArgument) as caught:
        from_timestamp(stamp, "due_date")

    assert caught.value.fields == {"due_date": [caught.value.fields["due_date"][0]]}


def test_timestamps_at_the_edges_of_the_range_convert():
    low = from_timestamp(timestamp_pb2.Timestamp(seconds=rfc3339.MIN_SECONDS))
    high = from_timestamp(timestamp_pb2.Timestamp(seconds=rfc3339.MAX_SECONDS, nanos=999_999_999))
    assert (low.year, high.year) == (1, 9999)
