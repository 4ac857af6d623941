"""Per-client budgets count an IPv6 host by its /64 (common.client_ip.limit_key): a host
with a /64 picks any of 2^64 addresses, so keyed exactly it had a budget per address."""

from __future__ import annotations

import pytest

from common.client_ip import limit_key
from common.errors import ResourceExhausted
from common.rate_limits import MethodRateLimits
from user_svc import attempts


def test_an_ipv6_address_is_counted_as_its_64():
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:DB8:1:2:ffff:0:0:7") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"


def test_an_ipv4_address_is_itself_mapped_or_not_and_other_names_are_kept():
    assert limit_key("198.51.100.7") == limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert limit_key("") == ""
    assert limit_key("2001:db8:1:2::/64") == "2001:db8:1:2::/64"  # keying a key changes nothing


def test_a_method_s_rate_limit_counts_an_ipv6_64_once():
    limits = MethodRateLimits({"pkg.Service/Method": "2/minute"})
    limits.check("pkg.Service/Method", "2001:db8:7::1")
    limits.check("pkg.Service/Method", "2001:db8:7::2")
    with pytest.raises(ResourceExhausted):
        limits.check("pkg.Service/Method", "2001:db8:7:0:1::3")
    limits.check("pkg.Service/Method", "2001:db8:8::1")  # another /64


def test_login_backoff_and_code_tries_count_an_ipv6_64_once():
    assert attempts.login_keys("carol", "2001:db8::1") == attempts.login_keys("carol", "2001:db8::2")
    assert attempts.code_try_key(7, "2001:db8::1") == attempts.code_try_key(7, "2001:db8::2")
