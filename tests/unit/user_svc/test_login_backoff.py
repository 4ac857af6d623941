import datetime as dt

import pytest

from user_svc import backoff

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def test_five_failures_are_free_then_the_delay_doubles_up_to_15_minutes():
    assert [backoff.delay_after(n) for n in range(1, 5)] == [0, 0, 0, 0]
    assert [backoff.delay_after(n) for n in range(5, 10)] == [30, 60, 120, 240, 480]
    assert backoff.delay_after(10) == 900
    assert backoff.delay_after(50) == 900


def test_four_quick_failures_do_not_block():
    assert backoff.retry_after([NOW - seconds(i) for i in range(4)], NOW) is None


def test_the_fifth_failure_blocks_for_30_seconds_from_the_last():
    failures = [NOW - seconds(10 - i) for i in range(5)]  # the last one 6 s ago
    assert backoff.retry_after(failures, NOW) == pytest.approx(24)
    assert backoff.retry_after(failures, NOW + seconds(24)) is None


def test_the_wait_never_exceeds_15_minutes():
    failures = [NOW - seconds(1)] * 40
    assert backoff.retry_after(failures, NOW) == pytest.approx(899)


def test_no_permanent_lockout_failures_older_than_an_hour_are_forgotten():
    failures = [NOW - dt.timedelta(minutes=61)] * 40
    assert backoff.retry_after(failures, NOW) is None
