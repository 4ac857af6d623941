"""notify_svc's half of "was the assignee told?" (issue 14 section 2): the internal
ListSubjectNotifications names every notification the events of one subject caused, with
the request id that started it; dead-lettered events of that subject are PENDING (on
the last page: keyset-paged, tokens bound to the subject); addresses only when asked.
Embedded default (DeliverEvents), PostgreSQL and SQLite, the test SMTP server."""

from __future__ import annotations

import grpc
import pytest

from common.context import request_id_var
from common.events import build_event
from notify_svc.server import build
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2 as pb
from taskmgr.notify.v1 import notify_service_pb2_grpc
from tests.integration.events.producer import user_registered
from tests.support.engines import ENGINES, database_url

S = pb.NotificationStatus
CREATED, ASSIGNED = "taskmgr.task.created", "taskmgr.task.assigned"


def task_event(event_type: str, payload, task_id: int, request_id: str) -> events_pb2.Event:  # noqa: ANN001
    token = request_id_var.set(request_id)
    try:
        return build_event(source="task_svc", event_type=event_type, subject=str(task_id), payload=payload)
    finally:
        request_id_var.reset(token)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_notification_of_one_task_with_its_request_id(
    request, tmp_path, notify_settings, smtp, issuer, engine
):
    settings = notify_settings(
        amqp_url="", notify_svc_metrics_port=0,
        notify_svc_database_url=database_url(request, engine, tmp_path, "notify"),
    )
    server = build(settings, 0, verifier=issuer.verifier()).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = notify_service_pb2_grpc.NotificationServiceStub(channel)
    internal = [("x-internal-key", settings.secret("internal_key").decode())]
    people = events_pb2.TaskPeople(created_by=91, assigned_to=92, actor=91)
    created = task_event(CREATED, events_pb2.TaskCreated(task_id=42, people=people), 42, "req-create")
    assigned = task_event(ASSIGNED, events_pb2.TaskAssigned(task_id=42, people=people), 42, "req-assign")
    # Assigned to someone notify_svc has no address for: FAILED, with the reason.
    stranger = events_pb2.TaskPeople(created_by=91, assigned_to=93, actor=91)
    unknown = task_event(ASSIGNED, events_pb2.TaskAssigned(task_id=42, people=stranger), 42, "req-x")
    # Refused (the wrong payload for its type): a dead letter of task 42, so PENDING.
    refused = task_event(ASSIGNED, events_pb2.TaskDeleted(task_id=42), 42, "req-refused")
    other_task = task_event(ASSIGNED, events_pb2.TaskAssigned(task_id=43, people=people), 43, "r")
    try:
        directory = [build_event(source="user_svc", event_type=t, subject="92", payload=p)
                     for t, p in [user_registered(92)]]
        stub.DeliverEvents(pb.DeliverEventsRequest(events=directory), metadata=internal)
        stub.DeliverEvents(
            pb.DeliverEventsRequest(events=[created, assigned, unknown, refused, other_task]),
            metadata=internal,
        )

        def traced(**fields) -> list[pb.SubjectNotification]:  # noqa: ANN003
            ask = pb.ListSubjectNotificationsRequest(source="task_svc", subject="42", **fields)
            return list(stub.ListSubjectNotifications(ask, metadata=internal).results)

        results = traced()
        with pytest.raises(grpc.RpcError) as not_internal:
            stub.ListSubjectNotifications(
                pb.ListSubjectNotificationsRequest(source="task_svc", subject="42"),
                metadata=issuer.metadata(1, is_staff=True),
            )
        staff_view = traced(with_addresses=True)
        pages, token = [], ""
        while True:  # a page of one: the log's entries by id, the dead letter on the last
            ask = pb.ListSubjectNotificationsRequest(source="task_svc", subject="42", page_size=1,
                                                     page_token=token)
            answer = stub.ListSubjectNotifications(ask, metadata=internal)
            pages.append([r.event_id for r in answer.results])
            token = answer.next_page_token
            if not token:
                break
        ask = pb.ListSubjectNotificationsRequest(source="task_svc", subject="42", page_size=1)
        first = stub.ListSubjectNotifications(ask, metadata=internal).next_page_token
        tampered = first[:12] + ("B" if first[12] == "A" else "A") + first[13:]
        refusals = []
        for bad, subject in ((tampered, "42"), (first, "43")):  # changed; another subject's
            with pytest.raises(grpc.RpcError) as refused_token:
                stub.ListSubjectNotifications(
                    pb.ListSubjectNotificationsRequest(source="task_svc", subject=subject, page_token=bad),
                    metadata=internal,
                )
            refusals.append(refused_token.value.code())
    finally:
        channel.close()
        server.stop(0)
    seen = [(r.event_id, r.status, r.recipient_user_id if r.HasField("recipient_user_id") else None,
             r.request_id) for r in results]
    assert seen == [
        (created.id, S.NOTIFICATION_STATUS_SKIPPED, None, "req-create"),
        (assigned.id, S.NOTIFICATION_STATUS_SENT, 92, "req-assign"),
        (unknown.id, S.NOTIFICATION_STATUS_FAILED, 93, "req-x"),
        (refused.id, S.NOTIFICATION_STATUS_PENDING, None, "req-refused"),
    ]
    skipped, sent, failed, pending = results
    assert skipped.reason == "nobody is to be told of this event"
    assert sent.attempts == 1 and sent.sent_at.seconds and sent.address == "" and sent.channel == "email"
    assert "no email address known for user 93" in failed.reason
    assert pending.reason.startswith("dead-lettered after 1 deliveries")
    assert "does not carry" in pending.reason
    assert [r.address for r in staff_view] == ["", "user92@example.com", "", ""]
    assert not_internal.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    assert len(smtp.to("user92@example.com")) == 2  # tasks 42 and 43
    assert pages == [[created.id], [assigned.id], [unknown.id, refused.id]]
    assert refusals == [grpc.StatusCode.INVALID_ARGUMENT] * 2
