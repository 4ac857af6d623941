"""Finding people (on PostgreSQL and SQLite): ListUsers' q= matches usernames by prefix,
case-insensitively, for everyone and emails for staff only; LIKE's wildcards match
only themselves; LookupUser finds a user by name for task_svc's project members."""

import uuid

import grpc
import pytest

from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import bearer, failure
from user_svc.server import build_domain
from user_svc.staff import create_staff

STAFF_PASSWORD = "operators choose long ones"


@pytest.fixture(scope="module")
def people(svc, client):
    """A unique prefix, three users under it and one staff user's token."""
    prefix = f"q{uuid.uuid4().hex[:6]}"
    users = [client.verified_user(f"{prefix}{suffix}") for suffix in ("ann", "anna", "bob")]
    # One whose email, not its name, starts with the prefix.
    other = client.verified_user(f"zz{uuid.uuid4().hex[:8]}")
    domain = build_domain(svc.settings)
    try:
        staff_name = f"staff{uuid.uuid4().hex[:6]}"
        create_staff(domain, staff_name, f"{staff_name}@example.com", lambda: STAFF_PASSWORD)
    finally:
        domain.database.dispose()
    staff = bearer(client.login(staff_name, STAFF_PASSWORD).access)
    return prefix, users, other, staff


def names(client, auth, q: str, page_size: int = 100) -> list[str]:  # noqa: ANN001
    found, token = [], ""
    while True:
        page = client.stub.ListUsers(
            pb.ListUsersRequest(q=q, page_size=page_size, page_token=token), metadata=auth
        )
        found += [user.username for user in page.results]
        token = page.next_page_token
        if not token:
            return found


def test_q_matches_usernames_by_prefix_case_insensitively_and_pages(client, people):
    prefix, (ann, anna, bob), _, _ = people
    me = bearer(client.login(bob.username).access)
    assert names(client, me, f"{prefix}ANN") == [ann.username, anna.username]
    assert names(client, me, f"{prefix}a", page_size=1) == [ann.username, anna.username]
    assert names(client, me, prefix.upper()) == [ann.username, anna.username, bob.username]
    assert names(client, me, f"{prefix}x") == []
    # Not a substring search: the middle of a name matches nothing.
    assert names(client, me, prefix[1:] + "ann") == []


def test_wildcards_match_only_themselves(client, people):
    prefix, (_, _, bob), _, _ = people
    me = bearer(client.login(bob.username).access)
    assert names(client, me, f"{prefix}_nn") == []
    assert names(client, me, f"{prefix}%") == []
    assert names(client, me, "%") == []


def test_emails_are_searched_for_staff_only(client, people):
    _, (_, _, bob), other, staff = people
    me = bearer(client.login(bob.username).access)
    email_prefix = other.email.split("@")[0][:8]
    assert names(client, staff, email_prefix.upper()) == [other.username]
    # The same prefix as a username matches (other's name starts with zz...), so use one
    # that only the address has.
    address_only = other.email[: other.email.index("@") + 2]
    assert names(client, staff, address_only) == [other.username]
    assert names(client, me, address_only) == []


def test_a_page_token_of_another_q_is_refused(client, people):
    prefix, (_, _, bob), _, _ = people
    me = bearer(client.login(bob.username).access)
    page = client.stub.ListUsers(pb.ListUsersRequest(q=prefix, page_size=1), metadata=me)
    error = failure(
        client.stub.ListUsers,
        pb.ListUsersRequest(q=f"{prefix}b", page_token=page.next_page_token),
        metadata=me,
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT


def test_lookup_user_finds_a_name_in_any_case(client, people):
    prefix, (ann, _, bob), _, _ = people
    me = bearer(client.login(bob.username).access)
    found = client.stub.LookupUser(pb.LookupUserRequest(username=ann.username.upper()), metadata=me)
    assert (found.id, found.username, found.HasField("email")) == (ann.id, ann.username, False)
    error = failure(client.stub.LookupUser, pb.LookupUserRequest(username=f"{prefix}nobody"), metadata=me)
    assert error.code == grpc.StatusCode.NOT_FOUND
    error = failure(client.stub.LookupUser, pb.LookupUserRequest(username=ann.username))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("name", ["ann\x00", "ann smith", "ann\n", "é" * 3])
def test_lookup_user_refuses_what_is_no_username_at_the_door(client, people, name):
    _, (_, _, bob), _, _ = people
    me = bearer(client.login(bob.username).access)
    error = failure(client.stub.LookupUser, pb.LookupUserRequest(username=name), metadata=me)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
