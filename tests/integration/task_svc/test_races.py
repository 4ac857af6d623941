"""Check-then-act under real concurrency: calls fired at once over gRPC, on PostgreSQL and
on the embedded SQLite (conftest). A create with one key makes one task, no change is
lost, every event tells the state it replaced, and a deleted task changes no more."""

from __future__ import annotations

import threading
import time

import grpc
from google.protobuf import field_mask_pb2
from sqlalchemy import func, select

from task_svc.models import IdempotencyKey, Task
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, CAROL, STAFF, outbox_events, reason
from tests.support.parallel import at_once, failed, succeeded

PARALLEL = 12
# What a change that lost a race may answer; never INTERNAL, UNKNOWN or UNAVAILABLE.
LOST_RACE = {(grpc.StatusCode.ABORTED, "CONCURRENT_UPDATE"), (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")}


def _create(stub, metadata, request_id: str = "", **fields):  # noqa: ANN001, ANN202
    request = pb.CreateTaskRequest(task=pb.Task(**fields), request_id=request_id)
    return lambda: stub.CreateTask(request, metadata=metadata)


def _set_description(stub, metadata, task_id: int, text: str):  # noqa: ANN001, ANN202
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=task_id, description=text),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    return lambda: stub.UpdateTask(request, metadata=metadata)


def _events(database, event_type: str, task_id: int) -> list[events_pb2.Event]:  # noqa: ANN001
    events = outbox_events(database)
    return [event for event in events if event.type == event_type and event.subject == str(task_id)]


def _lost(outcomes) -> set[tuple[grpc.StatusCode, str]]:  # noqa: ANN001
    return {(error.code(), reason(error)) for error in failed(outcomes)}


def test_parallel_creates_with_one_key_make_one_task_and_answer_it_alike(stub, as_user, database) -> None:
    outcomes = at_once([_create(stub, as_user(ALICE), "one-key", title="raced")] * PARALLEL)
    replies = succeeded(outcomes)
    assert len(replies) == PARALLEL
    assert all(reply == replies[0] for reply in replies)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 1
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
    assert len(_events(database, "taskmgr.task.created", replies[0].id)) == 1


def test_parallel_changes_without_a_version_lose_none(stub, as_user, database) -> None:
    task = _create(stub, as_user(ALICE), title="contended")()
    outcomes = at_once([_set_description(stub, as_user(ALICE), task.id, f"by {n}") for n in range(PARALLEL)])
    applied = succeeded(outcomes)
    assert _lost(outcomes) <= LOST_RACE
    # Each applied change made its own version, on top of the one before it.
    assert sorted(reply.version for reply in applied) == list(range(2, 2 + len(applied)))
    final = stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE))
    assert final.version == 1 + len(applied)
    assert final.description == max(applied, key=lambda reply: reply.version).description
    assert len(_events(database, "taskmgr.task.updated", task.id)) == len(applied)


def test_parallel_assignments_each_tell_the_assignee_they_replaced(stub, as_user, database) -> None:
    task = _create(stub, as_user(ALICE), title="to assign")()
    assignees = [BOB, CAROL, STAFF, ALICE]
    requests = [pb.AssignTaskRequest(id=task.id, user_id=user_id) for user_id in assignees]
    outcomes = at_once([
        lambda request=request: stub.AssignTask(request, metadata=as_user(ALICE)) for request in requests
    ])
    assert _lost(outcomes) <= LOST_RACE
    chain = []
    for event in _events(database, "taskmgr.task.assigned", task.id):
        payload = events_pb2.TaskAssigned()
        event.data.Unpack(payload)
        previous = payload.previous_assignee if payload.HasField("previous_assignee") else None
        chain.append((previous, payload.people.assigned_to))
    assert len(chain) == len(succeeded(outcomes))
    # Events in commit order: each replaced the assignee the one before it set.
    assert [previous for previous, _new in chain] == [None] + [new for _previous, new in chain[:-1]]
    assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE)).assigned_to == chain[-1][1]


def test_a_task_deleted_during_parallel_changes_changes_no_more(stub, as_user, database) -> None:
    task = _create(stub, as_user(ALICE), title="doomed")()
    delete = pb.DeleteTaskRequest(id=task.id)
    calls = [_set_description(stub, as_user(ALICE), task.id, f"late {n}") for n in range(PARALLEL - 1)]
    calls.insert(PARALLEL // 2, lambda: stub.DeleteTask(delete, metadata=as_user(ALICE)))
    outcomes = at_once(calls)
    assert _lost(outcomes) <= LOST_RACE
    if isinstance(outcomes[PARALLEL // 2], grpc.RpcError):  # the delete itself lost every retry
        stub.DeleteTask(delete, metadata=as_user(ALICE))
    order = [event.type for event in outbox_events(database) if event.subject == str(task.id)]
    assert order.count("taskmgr.task.deleted") == 1
    assert order[-1] == "taskmgr.task.deleted"  # nothing changed it after its delete
    with database.read() as session:
        assert session.get(Task, task.id) is None


def test_a_slow_assignee_check_holds_up_no_other_write(stub, as_user, fake_users) -> None:
    # The check asks user_svc; on SQLite a writing transaction holds the one write lock,
    # so the question must be asked outside it.
    task = _create(stub, as_user(ALICE), title="to assign")()
    fake_users.servicer.delay = 1.5
    assign = threading.Thread(
        target=stub.AssignTask, args=(pb.AssignTaskRequest(id=task.id, user_id=BOB),),
        kwargs={"metadata": as_user(ALICE), "timeout": 10},
    )
    assign.start()
    while not fake_users.servicer.calls:  # the assignment is waiting for user_svc now
        time.sleep(0.01)
    started = time.monotonic()
    _create(stub, as_user(CAROL), title="meanwhile")()
    assert time.monotonic() - started < 1.0
    assign.join()
    assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE)).assigned_to == BOB
