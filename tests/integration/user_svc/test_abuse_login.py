"""Login backoff that strangers cannot turn against the owner (user_svc/backoff.py;
OWASP ASVS v4 2.2.1, NIST SP 800-63B 5.2.2), on PostgreSQL and SQLite."""

from __future__ import annotations

import itertools
import uuid

import grpc

from tests.integration.user_svc.support import PASSWORD, failure

_addresses = (f"198.18.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))


def fresh_ip() -> str:
    return next(_addresses)


def _blocked(error) -> bool:  # noqa: ANN001
    return (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_LOGIN_ATTEMPTS")


def test_a_stranger_s_failures_do_not_lock_the_owner_out_elsewhere(any_db_svc):
    client = any_db_svc.client
    user, stranger, owner = client.verified_user(), fresh_ip(), fresh_ip()
    for _ in range(5):
        failure(client.login, user.username, "guess", ip=stranger)
    assert _blocked(failure(client.login, user.username, PASSWORD, ip=stranger))  # the guesser waits
    assert client.login(user.username, ip=owner).access  # the owner does not


def test_one_person_failing_behind_a_shared_address_does_not_lock_the_others(any_db_svc):
    client = any_db_svc.client
    office = fresh_ip()
    clumsy, colleague = client.verified_user(), client.verified_user()
    for _ in range(6):
        failure(client.login, clumsy.username, "forgot it", ip=office)
    assert _blocked(failure(client.login, clumsy.username, ip=office))
    assert client.login(colleague.username, ip=office).access


def test_spraying_one_address_over_many_usernames_is_bounded_at_that_address(any_db_svc):
    client = any_db_svc.client
    sprayer, user = fresh_ip(), client.verified_user()
    for _ in range(20):
        failure(client.login, f"spray{uuid.uuid4().hex[:8]}", "Winter2024!", ip=sprayer)
    assert _blocked(failure(client.login, user.username, ip=sprayer))
    assert client.login(user.username, ip=fresh_ip()).access


def test_a_distributed_guesser_is_bounded_and_the_owner_is_not_punished_below_the_bound(any_db_svc):
    client = any_db_svc.client
    user = client.verified_user()
    for _ in range(50):
        failure(client.login, user.username, "guess", ip=fresh_ip())  # a botnet: new address each time
    assert client.login(user.username, ip=fresh_ip()).access  # 50 strangers later, the owner logs in
    for _ in range(50):
        failure(client.login, user.username, "guess", ip=fresh_ip())
    blocked = failure(client.login, user.username, PASSWORD, ip=fresh_ip())
    assert _blocked(blocked) and 25 <= blocked.retry_after <= 30  # 100 in an hour: the account waits
    any_db_svc.clock.advance(seconds=31)
    assert client.login(user.username, ip=fresh_ip()).access  # and is never locked for good


def test_the_owner_s_success_restarts_their_own_count_only(any_db_svc):
    client = any_db_svc.client
    user, home = client.verified_user(), fresh_ip()
    for _ in range(4):
        failure(client.login, user.username, "typo", ip=home)
    assert client.login(user.username, ip=home).access
    for _ in range(4):
        failure(client.login, user.username, "typo", ip=home)
    assert client.login(user.username, ip=home).access  # 8 failures, but never 5 in a row
