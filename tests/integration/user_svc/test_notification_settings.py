"""Notification settings in user_svc (PostgreSQL and SQLite): every kind on until turned
off; PATCH semantics as AIP-134 (mask or the fields set; a named unset field back to on;
`*`; unknown paths refused); each change one user.notification_settings_changed event
with the whole state and a rising version; no event for no change; one's own only."""

from __future__ import annotations

import threading

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2 as pb
from tests.integration.user_svc.support import bearer, failure

KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")
EVENT = "taskmgr.user.notification_settings_changed"


def state(settings: pb.NotificationSettings) -> dict[str, bool]:
    return {kind: getattr(settings, kind) for kind in KINDS}


def changes_of(client, user_id: int) -> list[events_pb2.NotificationSettingsChanged]:  # noqa: ANN001
    found = []
    for event in client.outbox.events(EVENT):
        payload = events_pb2.NotificationSettingsChanged()
        event.data.Unpack(payload)
        if payload.user_id == user_id:
            assert event.subject == str(user_id) and event.source == "user_svc"
            found.append(payload)
    return found


def login(client):  # noqa: ANN001, ANN201
    user = client.verified_user()
    return user, bearer(client.login(user.username).access)


def test_everything_is_on_until_turned_off(client) -> None:
    user, auth = login(client)
    settings = client.stub.GetNotificationSettings(pb.GetNotificationSettingsRequest(), metadata=auth)
    assert state(settings) == dict.fromkeys(KINDS, True)
    assert not settings.HasField("update_time")
    assert changes_of(client, user.id) == []


def test_the_fields_set_change_and_each_change_is_an_event(client) -> None:
    user, auth = login(client)
    request = pb.UpdateNotificationSettingsRequest(settings=pb.NotificationSettings(comments=False))
    answer = client.stub.UpdateNotificationSettings(request, metadata=auth)
    assert state(answer) == dict.fromkeys(KINDS, True) | {"comments": False}
    assert answer.HasField("update_time")
    again = client.stub.GetNotificationSettings(pb.GetNotificationSettingsRequest(), metadata=auth)
    assert state(again) == state(answer)

    # Masked: due_reminders off; comments named and unset: back to on.
    request = pb.UpdateNotificationSettingsRequest(
        settings=pb.NotificationSettings(due_reminders=False, assignment=False),
        update_mask=FieldMask(paths=["due_reminders", "comments"]),
    )
    answer = client.stub.UpdateNotificationSettings(request, metadata=auth)
    assert state(answer) == dict.fromkeys(KINDS, True) | {"due_reminders": False}

    # The same again changes nothing: no event.
    client.stub.UpdateNotificationSettings(request, metadata=auth)
    events = changes_of(client, user.id)
    assert [event.version for event in events] == [1, 2]
    assert (events[0].comments, events[1].comments, events[1].due_reminders) == (False, True, False)
    assert events[1].assignment and events[1].status_changes and events[1].project_membership


def test_star_names_every_field_and_read_only_ones_are_ignored(client) -> None:
    _user, auth = login(client)
    request = pb.UpdateNotificationSettingsRequest(
        settings=pb.NotificationSettings(status_changes=False), update_mask=FieldMask(paths=["*"])
    )
    assert state(client.stub.UpdateNotificationSettings(request, metadata=auth)) == (
        dict.fromkeys(KINDS, True) | {"status_changes": False}
    )
    request = pb.UpdateNotificationSettingsRequest(
        settings=pb.NotificationSettings(project_membership=False),
        update_mask=FieldMask(paths=["project_membership", "update_time"]),
    )
    assert not client.stub.UpdateNotificationSettings(request, metadata=auth).project_membership


def test_unknown_paths_and_no_token_are_refused(client) -> None:
    _user, auth = login(client)
    request = pb.UpdateNotificationSettingsRequest(
        settings=pb.NotificationSettings(), update_mask=FieldMask(paths=["comments", "otp_codes"])
    )
    error = failure(client.stub.UpdateNotificationSettings, request, metadata=auth)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "otp_codes" in " ".join(error.fields["update_mask"])
    empty = pb.UpdateNotificationSettingsRequest()
    error = failure(client.stub.UpdateNotificationSettings, empty, metadata=auth)
    assert (error.code, list(error.fields)) == (grpc.StatusCode.INVALID_ARGUMENT, ["settings"])
    error = failure(client.stub.GetNotificationSettings, pb.GetNotificationSettingsRequest())
    assert error.code == grpc.StatusCode.UNAUTHENTICATED


def test_concurrent_first_changes_make_one_row_and_distinct_versions(client) -> None:
    user, auth = login(client)
    errors: list[BaseException] = []

    def change(kind: str) -> None:
        try:
            request = pb.UpdateNotificationSettingsRequest(settings=pb.NotificationSettings(**{kind: False}))
            client.stub.UpdateNotificationSettings(request, metadata=auth)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(kind,)) for kind in KINDS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    final = client.stub.GetNotificationSettings(pb.GetNotificationSettingsRequest(), metadata=auth)
    assert state(final) == dict.fromkeys(KINDS, False)
    assert sorted(event.version for event in changes_of(client, user.id)) == [1, 2, 3, 4, 5]
