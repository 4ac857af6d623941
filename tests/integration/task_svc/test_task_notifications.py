""""Was the assignee told?" (issue 14 section 2) over real gRPC: task_svc decides who may
see a task's notifications and asks notify_svc (a real one, embedded transport, the test
SMTP server) for them; events still in the outbox or dead-lettered are PENDING. Both
engines (the conftest's `engine`)."""

from __future__ import annotations

import grpc
import pytest

from common.db import Database
from common.events import build_event
from notify_svc.server import build as build_notify
from task_svc.events import SOURCE
from task_svc.models import Outbox
from task_svc.server import build
from taskmgr.events.v1 import events_pb2
from taskmgr.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from tests.integration.events.producer import user_registered
from tests.integration.task_svc.support import ALICE, BOB, CAROL, STAFF
from tests.support.local import free_port, wait_for
from tests.support.mailbox import start_smtp_server

S = pb.TaskNotificationStatus


@pytest.fixture
def smtp():
    controller, inbox = start_smtp_server()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def system(settings, issuer, smtp, tmp_path):  # noqa: ANN001, ANN201
    """notify_svc, then task_svc whose relay and notification reads go to it."""
    notify_port = free_port()
    settings = settings.model_copy(update={
        "notify_svc_addr": f"127.0.0.1:{notify_port}", "notify_svc_database_url": f"sqlite:///{tmp_path}/n.db",
        "smtp_host": "127.0.0.1", "smtp_port": smtp[0], "smtp_starttls": False,
    })
    notify = build_notify(settings, notify_port, verifier=issuer.verifier()).start()
    tasks = build(settings, 0, verifier=issuer.verifier()).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{tasks.port}")
    notify_channel = grpc.insecure_channel(f"127.0.0.1:{notify_port}")
    yield (settings, task_service_pb2_grpc.TaskServiceStub(channel),
           notify_service_pb2_grpc.NotificationServiceStub(notify_channel))
    channel.close()
    notify_channel.close()
    tasks.stop(0)
    notify.stop(0)


def test_whoever_sees_the_task_sees_its_notifications_staff_their_addresses(system, issuer, smtp):
    settings, stub, notify = system
    internal = [("x-internal-key", settings.secret("internal_key").decode())]
    bob = build_event(source="user_svc", event_type=user_registered(BOB)[0], subject=str(BOB),
                      payload=user_registered(BOB)[1])
    notify.DeliverEvents(notify_service_pb2.DeliverEventsRequest(events=[bob]), metadata=internal)

    alice = issuer.metadata(ALICE)
    task = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="Tell Bob")),
                           metadata=[*alice, ("x-request-id", "req-create")])
    stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=BOB),
                    metadata=[*alice, ("x-request-id", "req-assign")])
    wait_for(lambda: smtp[1].to("user2@example.com"))

    def listed(metadata) -> list[pb.TaskNotification]:  # noqa: ANN001
        def settled():  # noqa: ANN202 (both events handled: none pending)
            ask = pb.ListTaskNotificationsRequest(id=task.id)
            results = stub.ListTaskNotifications(ask, metadata=metadata).results
            done = len(results) == 2 and all(r.status != S.TASK_NOTIFICATION_STATUS_PENDING for r in results)
            return results if done else None
        return wait_for(settled)

    seen = listed(alice)
    assert [(r.event_type, r.status, r.request_id) for r in seen] == [
        ("taskmgr.task.created", S.TASK_NOTIFICATION_STATUS_SKIPPED, "req-create"),
        ("taskmgr.task.assigned", S.TASK_NOTIFICATION_STATUS_SENT, "req-assign"),
    ]
    assert seen[1].recipient_user_id == BOB and seen[1].address == "" and seen[1].attempts == 1
    assert seen[0].reason and not seen[0].HasField("recipient_user_id")
    assert listed(issuer.metadata(BOB)) == seen  # the assignee may see the task
    assert [r.address for r in listed(issuer.metadata(STAFF, is_staff=True))] == ["", "user2@example.com"]
    for outsider, id_ in ((CAROL, task.id), (ALICE, task.id + 1000)):
        with pytest.raises(grpc.RpcError) as hidden:
            ask = pb.ListTaskNotificationsRequest(id=id_)
            stub.ListTaskNotifications(ask, metadata=issuer.metadata(outsider))
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    # Committed and not yet relayed (written beside the service: its relay is not woken,
    # and polls every 5 s), and refused by notify_svc (a dead letter): both PENDING.
    database = Database(settings.task_svc_database_url, pool_size=1)
    try:
        with database.transaction() as session:
            waiting = Outbox.record(session, source=SOURCE, event_type="taskmgr.task.updated",
                                    subject=str(task.id), payload=events_pb2.TaskUpdated(task_id=task.id))
    finally:
        database.dispose()
    poison = build_event(source=SOURCE, event_type="taskmgr.task.assigned", subject=str(task.id),
                         payload=events_pb2.TaskDeleted(task_id=task.id))
    notify.DeliverEvents(notify_service_pb2.DeliverEventsRequest(events=[poison]), metadata=internal)
    results = stub.ListTaskNotifications(pb.ListTaskNotificationsRequest(id=task.id), metadata=alice).results
    pending = {r.event_id: r for r in results if r.status == S.TASK_NOTIFICATION_STATUS_PENDING}
    assert set(pending) == {waiting.id, poison.id}
    assert "outbox" in pending[waiting.id].reason or "not yet" in pending[waiting.id].reason
    assert pending[poison.id].reason.startswith("dead-lettered")


def test_notify_svc_away_is_unavailable_not_a_500(settings, issuer):
    tasks = build(settings, 0, verifier=issuer.verifier()).start()  # notify_svc_addr: nobody
    try:
        with grpc.insecure_channel(f"127.0.0.1:{tasks.port}") as channel:
            stub = task_service_pb2_grpc.TaskServiceStub(channel)
            create = pb.CreateTaskRequest(task=pb.Task(title="t"))
            task = stub.CreateTask(create, metadata=issuer.metadata(ALICE))
            with pytest.raises(grpc.RpcError) as away:
                stub.ListTaskNotifications(pb.ListTaskNotificationsRequest(id=task.id),
                                           metadata=issuer.metadata(ALICE))
    finally:
        tasks.stop(0)
    assert away.value.code() == grpc.StatusCode.UNAVAILABLE
