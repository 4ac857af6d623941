"""Profiles, the user directory (paging, who sees which email), GetUser, and the
create-staff operator command (once as the real `python -m user_svc` process, then
in-process: starting Python is slow)."""

import os
import subprocess
import sys
import uuid

import grpc
import pytest

from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import PASSWORD, bearer, error_of, failure
from user_svc.server import build_domain
from user_svc.staff import StaffError, create_staff

STAFF_PASSWORD = "operators choose long ones"


@pytest.fixture(scope="module")
def staff(svc):
    """A staff user made by `python -m user_svc create-staff`, the password on stdin."""
    name = f"staff{uuid.uuid4().hex[:6]}"
    environment = {
        **os.environ, "ENVIRONMENT": "test", "VAR_DIR": str(svc.settings.var_dir),
        "USER_SVC_DATABASE_URL": svc.settings.user_svc_database_url, "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "1024", "NOTIFY_SVC_ADDR": svc.settings.notify_svc_addr, "AMQP_URL": "",
    }
    command = ["create-staff", "--username", name, "--email", f"{name.upper()}@example.com"]
    done = subprocess.run(
        [sys.executable, "-m", "user_svc", *command],
        input=STAFF_PASSWORD + "\n", env=environment, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "created staff user" in done.stdout
    tokens = svc.client.login(name, STAFF_PASSWORD)
    return svc.client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(tokens.access)), tokens.access


def test_create_staff_makes_a_verified_staff_user(staff):
    user, _ = staff
    assert user.is_staff and user.email_verified
    assert user.email == user.email.lower()


@pytest.fixture(scope="module")
def domain(svc):
    built = build_domain(svc.settings)
    yield built
    built.database.dispose()


def never_asked() -> str:
    raise AssertionError("promoting asks for no password")


def test_create_staff_promotes_an_existing_user_whose_address_matches(client, domain):
    user = client.verified_user()
    with pytest.raises(StaffError, match="another email"):
        create_staff(domain, user.username, "someone-else@example.com", never_asked)
    assert "promoted" in create_staff(domain, user.username, user.email.upper(), never_asked)
    access = client.login(user.username).access
    assert client.stub.GetProfile(pb.GetProfileRequest(), metadata=bearer(access)).is_staff


def test_create_staff_refuses_a_weak_password_and_a_taken_address(client, domain):
    name = f"staff{uuid.uuid4().hex[:6]}"
    with pytest.raises(StaffError, match="too common"):
        create_staff(domain, name, f"{name}@example.com", lambda: "password1")
    taken = client.verified_user()
    with pytest.raises(StaffError, match="another user"):
        create_staff(domain, name, taken.email, lambda: STAFF_PASSWORD)


def test_list_users_pages_by_id_and_shows_other_emails_only_to_staff(client, staff):
    _, staff_access = staff
    for _ in range(3):
        client.verified_user()
    me = client.verified_user()
    my_auth = bearer(client.login(me.username).access)

    seen, token = [], ""
    while True:
        page = client.stub.ListUsers(pb.ListUsersRequest(page_size=2, page_token=token), metadata=my_auth)
        assert len(page.results) <= 2
        seen.extend(page.results)
        token = page.next_page_token
        if not token:
            break
    ids = [user.id for user in seen]
    assert ids == sorted(set(ids)) and me.id in ids and len(ids) >= 5
    assert [user.username for user in seen if user.HasField("email")] == [me.username]

    as_staff = client.stub.ListUsers(pb.ListUsersRequest(page_size=100), metadata=bearer(staff_access))
    assert all(user.HasField("email") for user in as_staff.results)
    assert client.stub.GetUser(pb.GetUserRequest(id=me.id), metadata=bearer(staff_access)).email == me.email


def chief_auth(svc) -> list[tuple[str, str]]:  # noqa: ANN001
    """The metadata of a staff user "chief", made as the operator command does."""
    domain = build_domain(svc.settings)
    try:
        create_staff(domain, "chief", "chief@example.com", lambda: STAFF_PASSWORD)
    finally:
        domain.database.dispose()
    return bearer(svc.client.login("chief", STAFF_PASSWORD).access)


def test_list_users_shows_others_only_verified_active_accounts_and_staff_everyone(any_db_svc):
    client = any_db_svc.client
    unverified, _ = client.register()
    verified = client.verified_user()
    deactivated = client.verified_user()
    me = client.verified_user()
    staff_auth = chief_auth(any_db_svc)
    client.stub.DeactivateUser(pb.DeactivateUserRequest(id=deactivated.id), metadata=staff_auth)
    my_auth = bearer(client.login(me.username).access)

    def listed(auth, q: str = "", page_size: int = 1) -> list[pb.User]:  # noqa: ANN001
        found, token = [], ""
        while True:  # pages of one: the filter holds across page tokens too
            request = pb.ListUsersRequest(q=q, page_size=page_size, page_token=token)
            page = client.stub.ListUsers(request, metadata=auth)
            found += page.results
            if not (token := page.next_page_token):
                return found

    everyone = [unverified.username, verified.username, deactivated.username, me.username, "chief"]
    for q in ("", "U"):  # every generated username starts with u
        seen = listed(my_auth, q)
        expected = [verified.username, me.username] + (["chief"] if not q else [])
        assert [user.username for user in seen] == expected
        # Only my own email, in a shape that has the field (null for the others).
        assert [user.username for user in seen if user.HasField("email")] == [me.username]
        as_staff = listed(staff_auth, q)
        assert [user.username for user in as_staff] == [n for n in everyone if not q or n.startswith("u")]
        assert all(user.HasField("email") for user in as_staff)
    assert listed(my_auth, unverified.username) == [] and listed(my_auth, deactivated.username) == []
    assert [user.id for user in listed(staff_auth, unverified.username)] == [unverified.id]


def test_list_users_refuses_bad_paging(client):
    auth = bearer(client.login(client.verified_user().username).access)
    client.verified_user()  # two users at least, so a page of one has a next page
    first = client.stub.ListUsers(pb.ListUsersRequest(page_size=1), metadata=auth)
    token = first.next_page_token
    assert token
    # The second-to-last character always carries data bits (the last may be padding).
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    error = failure(client.stub.ListUsers, pb.ListUsersRequest(page_token=tampered), metadata=auth)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    error = failure(client.stub.ListUsers, pb.ListUsersRequest(page_size=-1), metadata=auth)
    # A rule of the contract (buf.validate gte 0), checked before the handler runs.
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert set(error.fields) == {"page_size"}
    assert len(client.stub.ListUsers(pb.ListUsersRequest(page_size=1000), metadata=auth).results) <= 100


def test_get_user_of_an_unknown_id_is_404(client):
    auth = bearer(client.login(client.verified_user().username).access)
    error = failure(client.stub.GetUser, pb.GetUserRequest(id=2**62), metadata=auth)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    for impossible in (0, -5):  # no id is ever 0 or less: the contract refuses it (id > 0)
        error = failure(client.stub.GetUser, pb.GetUserRequest(id=impossible), metadata=auth)
        assert (error.code, set(error.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"id"})


def test_update_profile_bounds_names(client):
    auth = bearer(client.login(client.verified_user().username).access)
    error = failure(
        client.stub.UpdateProfile,
        pb.UpdateProfileRequest(first_name="x" * 151, last_name="line\nbreak"),
        metadata=auth,
    )
    assert (error.code, set(error.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"first_name", "last_name"})
    cleared = client.stub.UpdateProfile(pb.UpdateProfileRequest(first_name=""), metadata=auth)
    assert cleared.first_name == ""


def test_the_password_is_not_echoed_anywhere_in_the_user(client):
    user, _ = client.register(password=PASSWORD)
    assert PASSWORD not in str(user)


def test_get_and_lookup_answer_others_as_list_users_does_and_staff_everything(any_db_svc):
    """An unverified sign-up or a deactivated account is, to anyone but staff, a user
    nobody has: the same NOT_FOUND as an unknown id or name (no enumeration through
    GetUser / LookupUser of what ListUsers hides)."""
    client = any_db_svc.client
    unverified, _ = client.register()
    deactivated = client.verified_user()
    visible = client.verified_user()
    staff_auth = chief_auth(any_db_svc)
    gone = client.stub.DeactivateUser(pb.DeactivateUserRequest(id=deactivated.id), metadata=staff_auth)
    assert gone.is_active is False
    my_auth = bearer(client.login(client.verified_user().username).access)

    unknown = [
        error_of_call(client.stub.GetUser, pb.GetUserRequest(id=2**62), my_auth),
        error_of_call(client.stub.LookupUser, pb.LookupUserRequest(username="nobody-at-all"), my_auth),
    ]
    for hidden in (unverified, deactivated):
        for name in (hidden.username, hidden.username.upper()):
            answer = error_of_call(client.stub.LookupUser, pb.LookupUserRequest(username=name), my_auth)
            assert answer == unknown[1]
        assert error_of_call(client.stub.GetUser, pb.GetUserRequest(id=hidden.id), my_auth) == unknown[0]
        assert client.stub.GetUser(pb.GetUserRequest(id=hidden.id), metadata=staff_auth).id == hidden.id
        found = client.stub.LookupUser(pb.LookupUserRequest(username=hidden.username), metadata=staff_auth)
        assert found.id == hidden.id
    assert unknown[0] == unknown[1] == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND", "No such user.")
    as_staff = client.stub.GetUser(pb.GetUserRequest(id=deactivated.id), metadata=staff_auth)
    assert (as_staff.is_active, as_staff.email_verified) == (False, True)
    unconfirmed = client.stub.GetUser(pb.GetUserRequest(id=unverified.id), metadata=staff_auth)
    assert unconfirmed.email_verified is False
    seen = client.stub.GetUser(pb.GetUserRequest(id=visible.id), metadata=my_auth)
    assert (seen.username, seen.is_active) == (visible.username, True)
    looked_up = client.stub.LookupUser(pb.LookupUserRequest(username=visible.username), metadata=my_auth)
    assert looked_up.id == visible.id

    # Reactivated, the account is anybody's to find again.
    client.stub.ReactivateUser(pb.ReactivateUserRequest(id=deactivated.id), metadata=staff_auth)
    assert client.stub.GetUser(pb.GetUserRequest(id=deactivated.id), metadata=my_auth).is_active is True


def test_deactivation_and_reactivation_are_events_whose_versions_rise(any_db_svc):
    """taskmgr.user.active_changed tells notify_svc (which emails no deactivated account);
    a repeat changes nothing and records nothing."""
    client = any_db_svc.client
    user = client.verified_user()
    staff_auth = chief_auth(any_db_svc)
    for call, request in [
        (client.stub.DeactivateUser, pb.DeactivateUserRequest(id=user.id)),
        (client.stub.DeactivateUser, pb.DeactivateUserRequest(id=user.id)),  # a no-op
        (client.stub.ReactivateUser, pb.ReactivateUserRequest(id=user.id)),
        (client.stub.DeactivateUser, pb.DeactivateUserRequest(id=user.id)),
    ]:
        call(request, metadata=staff_auth)
    said = []
    for event in client.outbox.events("taskmgr.user.active_changed"):
        payload = events_pb2.UserActiveChanged()
        assert event.data.Unpack(payload) and event.subject == str(user.id)
        said.append((payload.user_id, payload.active, payload.version))
    assert [(user_id, active) for user_id, active, _ in said] == [
        (user.id, False), (user.id, True), (user.id, False)
    ]
    versions = [version for _, _, version in said]
    assert versions == sorted(set(versions))


def error_of_call(call, request, metadata) -> tuple:  # noqa: ANN001
    """All a failed call tells: its code, message and ErrorInfo reason."""
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=metadata)
    return raised.value.code(), failure_reason(raised.value), raised.value.details()


def failure_reason(error: grpc.RpcError) -> str:
    return error_of(error).reason
