import datetime as dt

import pytest

from user_svc import otp
from user_svc.otp import CodeMac, CodeState, Purpose

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def test_codes_are_six_digits_and_vary():
    codes = {otp.new_code() for _ in range(200)}
    assert all(otp.well_formed(code) for code in codes)
    assert len(codes) > 150


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "", "12345\n", "１２３４５６"])
def test_malformed_codes(code):
    assert not otp.well_formed(code)


def test_mac_binds_the_code_to_user_and_purpose():
    mac = CodeMac(b"k" * 32)
    stored = mac.of(7, Purpose.VERIFY_EMAIL, "123456")
    assert "123456" not in stored
    assert mac.matches(stored, 7, Purpose.VERIFY_EMAIL, "123456")
    assert not mac.matches(stored, 7, Purpose.VERIFY_EMAIL, "123457")
    assert not mac.matches(stored, 8, Purpose.VERIFY_EMAIL, "123456")
    assert not mac.matches(stored, 7, Purpose.RESET_PASSWORD, "123456")
    assert not CodeMac(b"other key").matches(stored, 7, Purpose.VERIFY_EMAIL, "123456")


def test_a_code_lives_ten_minutes():
    state = CodeState(expires_at=NOW + otp.LIFETIME, wrong_attempts=0, closed=False)
    assert state.usable(NOW + minutes(9.99))
    assert not state.usable(NOW + minutes(10))


def test_fifty_wrong_tries_over_all_addresses_burn_a_code_and_a_used_code_is_gone():
    expires = NOW + otp.LIFETIME
    assert CodeState(expires, wrong_attempts=49, closed=False).usable(NOW)
    assert not CodeState(expires, wrong_attempts=50, closed=False).usable(NOW)
    assert otp.address_may_try(4) and not otp.address_may_try(5)  # five per address
    assert not CodeState(expires, wrong_attempts=0, closed=True).usable(NOW)


def test_a_request_within_60_seconds_of_the_last_waits_out_the_rest():
    assert otp.request_retry_after([], NOW) is None
    assert otp.request_retry_after([NOW - dt.timedelta(seconds=59)], NOW) == pytest.approx(1)
    assert otp.request_retry_after([NOW - dt.timedelta(seconds=60)], NOW) is None


def test_at_most_five_requests_an_hour_then_until_the_oldest_leaves_the_hour():
    five = [NOW - minutes(50 - 10 * i) for i in range(5)]  # 50, 40, 30, 20, 10 minutes ago
    assert otp.request_retry_after(five, NOW) == pytest.approx(minutes(10).total_seconds())
    assert otp.request_retry_after(five, NOW + minutes(10.1)) is None
    assert otp.request_retry_after([NOW - dt.timedelta(hours=2)] * 9, NOW) is None
