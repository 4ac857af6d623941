"""Who a rate limit counts (common.rate_limits.counted_as): on a method that needs a
token the user, whatever address they call from; on a public one the client address."""

from __future__ import annotations

import pytest

from common.auth import Claims
from common.errors import ResourceExhausted
from common.rate_limits import MethodRateLimits, counted_as

ASSIGN = "taskmgr.task.v1.TaskService/AssignTask"


def _claims(user_id: int) -> Claims:
    return Claims(user_id=user_id, username=f"user{user_id}", email="", is_staff=False, token="t")


def test_a_signed_in_caller_is_counted_as_the_user_whatever_the_address():
    assert counted_as("10.0.0.7", _claims(2)) == "user:2"
    assert counted_as("2001:db8::1", _claims(2)) == "user:2"
    assert counted_as("", _claims(2)) == "user:2"


def test_a_caller_without_a_token_is_counted_as_the_client_address():
    assert counted_as("10.0.0.7", None) == "10.0.0.7"
    assert counted_as("2001:db8:1:2::a", None) == "2001:db8:1:2::/64"  # its /64, as limit_key


def test_one_user_from_many_addresses_has_one_budget():
    limits = MethodRateLimits({ASSIGN: "2/minute"})
    limits.check(ASSIGN, "10.0.0.1", _claims(3))
    limits.check(ASSIGN, "10.0.0.2", _claims(3))
    with pytest.raises(ResourceExhausted) as refused:
        limits.check(ASSIGN, "10.0.0.3", _claims(3))
    assert refused.value.reason == "RATE_LIMITED" and refused.value.retry_after >= 1


def test_users_behind_one_address_are_not_each_others_budget():
    limits = MethodRateLimits({ASSIGN: "2/minute"})
    for _ in range(2):
        limits.check(ASSIGN, "192.0.2.9", _claims(3))
    with pytest.raises(ResourceExhausted):
        limits.check(ASSIGN, "192.0.2.9", _claims(3))
    limits.check(ASSIGN, "192.0.2.9", _claims(4))  # a colleague behind the same NAT
    limits.check(ASSIGN, "192.0.2.9", None)  # and the address's own (public) budget
