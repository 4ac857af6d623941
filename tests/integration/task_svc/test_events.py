"""The events each change leaves in the outbox, with the people involved."""

from __future__ import annotations

from google.protobuf import field_mask_pb2

from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, CAROL, grpc_error, outbox_events

PAYLOADS = {
    "taskmgr.task.created": events_pb2.TaskCreated,
    "taskmgr.task.updated": events_pb2.TaskUpdated,
    "taskmgr.task.assigned": events_pb2.TaskAssigned,
    "taskmgr.task.deleted": events_pb2.TaskDeleted,
}


def recorded(database) -> list[tuple[str, object]]:  # noqa: ANN001
    found = []
    for event in outbox_events(database):
        assert event.source == "task_svc"
        payload = PAYLOADS[event.type]()
        assert event.data.Unpack(payload)
        assert event.subject == str(payload.task_id)
        found.append((event.type, payload))
    return found


def people(created_by: int, assigned_to: int | None, actor: int, told: list[int]) -> events_pb2.TaskPeople:
    """`told`: the recipients task_svc decided on (watchers who can see the task, the
    assignees an assignment is about; never the actor)."""
    return events_pb2.TaskPeople(
        created_by=created_by, assigned_to=assigned_to, actor=actor,
        recipients=events_pb2.TaskRecipients(user_ids=told),
    )


def test_the_life_of_a_task_in_events(stub, as_user, database) -> None:
    task = stub.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(title="t", assigned_to=BOB)), metadata=as_user(ALICE)
    )
    stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=task.id, status=pb.TASK_STATUS_IN_PROGRESS),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
        metadata=as_user(BOB),
    )
    stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=task.id, title="renamed", assigned_to=CAROL),
            update_mask=field_mask_pb2.FieldMask(paths=["title", "assigned_to"]),
        ),
        metadata=as_user(ALICE),
    )
    stub.AssignTask(pb.AssignTaskRequest(id=task.id), metadata=as_user(ALICE))
    stub.DeleteTask(pb.DeleteTaskRequest(id=task.id), metadata=as_user(ALICE))

    tid = task.id
    assert recorded(database) == [
        ("taskmgr.task.created", events_pb2.TaskCreated(
            task_id=tid, title="t", people=people(ALICE, BOB, ALICE, []), status=pb.TASK_STATUS_PENDING)),
        ("taskmgr.task.assigned", events_pb2.TaskAssigned(
            task_id=tid, title="t", people=people(ALICE, BOB, ALICE, [BOB]))),
        ("taskmgr.task.updated", events_pb2.TaskUpdated(
            task_id=tid, title="t", people=people(ALICE, BOB, BOB, [ALICE]),
            old_status=pb.TASK_STATUS_PENDING, new_status=pb.TASK_STATUS_IN_PROGRESS,
            changed_fields=["status"])),
        # One update that renames and reassigns: both an update and an assignment; each
        # person told once (Bob and Carol by the assignment; Bob can no longer see it).
        ("taskmgr.task.updated", events_pb2.TaskUpdated(
            task_id=tid, title="renamed", people=people(ALICE, CAROL, ALICE, []),
            old_status=pb.TASK_STATUS_IN_PROGRESS, new_status=pb.TASK_STATUS_IN_PROGRESS,
            changed_fields=["title", "assigned_to"])),
        ("taskmgr.task.assigned", events_pb2.TaskAssigned(
            task_id=tid, title="renamed", people=people(ALICE, CAROL, ALICE, [CAROL, BOB]),
            previous_assignee=BOB)),
        ("taskmgr.task.assigned", events_pb2.TaskAssigned(
            task_id=tid, title="renamed", people=people(ALICE, None, ALICE, [CAROL]),
            previous_assignee=CAROL)),
        ("taskmgr.task.deleted", events_pb2.TaskDeleted(
            task_id=tid, title="renamed", people=people(ALICE, None, ALICE, []))),
    ]


def test_a_refused_change_records_no_event(stub, as_user, database) -> None:
    task = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="t")), metadata=as_user(ALICE))
    before = len(outbox_events(database))
    grpc_error(stub.AssignTask, pb.AssignTaskRequest(id=task.id, user_id=999), metadata=as_user(ALICE))
    assert len(outbox_events(database)) == before
