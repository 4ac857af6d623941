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


def test_many_addresses_failing_cannot_keep_the_owner_out_where_they_logged_in_before(any_db_svc):
    # The reviewer's finding: 110 wrong passwords from 22 addresses answered the owner's
    # right one 429 from everywhere, and one failure per wait kept them out.
    client = any_db_svc.client
    carol, home = client.verified_user(), fresh_ip()
    assert client.login(carol.username, ip=home).access
    strangers = [fresh_ip() for _ in range(22)]
    for stranger in strangers:
        for _ in range(5):
            failure(client.login, carol.username, "guess", ip=stranger)
    assert client.login(carol.username, ip=home).access  # where carol logged in: 200
    # The guessers are still bounded: each address by its pair, a new one by the account.
    assert _blocked(failure(client.login, carol.username, PASSWORD, ip=strangers[0]))
    assert _blocked(failure(client.login, carol.username, PASSWORD, ip=fresh_ip()))
    for _ in range(3):  # one more failure each wait does not reach carol at home either
        any_db_svc.clock.advance(minutes=16)
        failure(client.login, carol.username, "guess", ip=fresh_ip())
        assert client.login(carol.username, ip=home).access


def test_an_ipv6_host_is_one_client_per_64(any_db_svc):
    client = any_db_svc.client
    user = client.verified_user()
    for host in range(1, 6):  # a new interface identifier for each guess
        failure(client.login, user.username, "guess", ip=f"2001:db8:1:2::{host:x}")
    assert _blocked(failure(client.login, user.username, PASSWORD, ip="2001:db8:1:2:aaaa::1"))
    assert client.login(user.username, ip="2001:db8:1:3::1").access  # the next /64 is another client


def test_an_owner_s_ipv6_64_stays_known_when_their_address_in_it_changes(any_db_svc):
    client = any_db_svc.client
    user = client.verified_user()
    assert client.login(user.username, ip="2001:db8:5:6::1").access
    for _ in range(100):
        failure(client.login, user.username, "guess", ip=fresh_ip())
    assert _blocked(failure(client.login, user.username, PASSWORD, ip=fresh_ip()))
    assert client.login(user.username, ip="2001:db8:5:6:1234:5678:9abc:def0").access  # a privacy address
