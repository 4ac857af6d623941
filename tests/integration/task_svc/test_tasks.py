"""Create, get, update, assign and delete over gRPC: the rules as a client meets them."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from sqlalchemy import func, select

from task_svc.models import IdempotencyKey, Task
from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import (
    ALICE,
    BOB,
    CAROL,
    STAFF,
    UNVERIFIED,
    field_violations,
    grpc_error,
    outbox_events,
    reason,
)


def create(stub, metadata, request_id: str = "", **fields) -> pb.Task:  # noqa: ANN001
    request = pb.CreateTaskRequest(task=pb.Task(**fields), request_id=request_id)
    return stub.CreateTask(request, metadata=metadata)


def update(stub, metadata, task_id: int, paths: list[str], expected_version=None, **fields) -> pb.Task:  # noqa: ANN001
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=task_id, **fields), update_mask=field_mask_pb2.FieldMask(paths=paths),
        if_match=None if expected_version is None else VersionMatch(versions=[expected_version]),
    )
    return stub.UpdateTask(request, metadata=metadata)


def test_create_fills_defaults_and_get_returns_it(stub, as_user) -> None:
    due = timestamp_pb2.Timestamp(seconds=1_900_000_000)
    task = create(stub, as_user(ALICE), title="Write report", description="two\nlines", due_date=due)
    assert (task.status, task.priority, task.created_by, task.version) == (
        pb.TASK_STATUS_PENDING, pb.TASK_PRIORITY_MEDIUM, ALICE, 1,
    )
    assert not task.HasField("assigned_to")
    assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE)) == task


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        # Named from the request, as the contract's checks name them (AIP-193).
        ({"title": ""}, "task.title"),
        ({"title": "x" * 201}, "task.title"),
        ({"title": "t", "description": "\x00"}, "task.description"),
    ],
)
def test_create_refuses_bad_fields(stub, as_user, fields: dict, bad: str) -> None:
    error = grpc_error(create, stub, as_user(ALICE), **fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad in field_violations(error)


def test_a_call_without_a_token_is_unauthenticated(stub) -> None:
    error = grpc_error(stub.ListTasks, pb.ListTasksRequest())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_user_b_sees_nothing_of_user_a(stub, as_user) -> None:
    task = create(stub, as_user(ALICE), title="private")
    for call, request in [
        (stub.GetTask, pb.GetTaskRequest(id=task.id)),
        (stub.DeleteTask, pb.DeleteTaskRequest(id=task.id)),
        (stub.AssignTask, pb.AssignTaskRequest(id=task.id, user_id=BOB)),
    ]:
        error = grpc_error(call, request, metadata=as_user(BOB))
        assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    error = grpc_error(update, stub, as_user(BOB), task.id, ["status"], status=pb.TASK_STATUS_DONE)
    assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    # ... exactly as for a task that does not exist.
    missing = grpc_error(stub.GetTask, pb.GetTaskRequest(id=task.id + 1000), metadata=as_user(BOB))
    assert (missing.code(), reason(missing)) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    assert not stub.ListTasks(pb.ListTasksRequest(), metadata=as_user(BOB)).results


def test_assignee_may_change_status_but_not_title(stub, as_user) -> None:
    task = create(stub, as_user(ALICE), title="shared", assigned_to=BOB)
    done = update(stub, as_user(BOB), task.id, ["status"], status=pb.TASK_STATUS_DONE)
    assert (done.status, done.version) == (pb.TASK_STATUS_DONE, 2)
    error = grpc_error(update, stub, as_user(BOB), task.id, ["title"], title="mine now")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(error) == "ASSIGNEE_MAY_ONLY_CHANGE_STATUS"
    for call, request in [
        (stub.DeleteTask, pb.DeleteTaskRequest(id=task.id)),
        (stub.AssignTask, pb.AssignTaskRequest(id=task.id, user_id=CAROL)),
    ]:
        assert grpc_error(call, request, metadata=as_user(BOB)).code() == grpc.StatusCode.PERMISSION_DENIED


def test_staff_see_and_change_every_task(stub, as_user) -> None:
    task = create(stub, as_user(ALICE), title="anyone's")
    assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(STAFF)).id == task.id
    assert [t.id for t in stub.ListTasks(pb.ListTasksRequest(), metadata=as_user(STAFF)).results] == [task.id]
    assert update(stub, as_user(STAFF), task.id, ["title"], title="edited").title == "edited"
    stub.DeleteTask(pb.DeleteTaskRequest(id=task.id), metadata=as_user(STAFF))
    assert grpc_error(stub.GetTask, pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE)).code() == (
        grpc.StatusCode.NOT_FOUND
    )


def test_update_mask_sets_and_clears(stub, as_user) -> None:
    due = timestamp_pb2.Timestamp(seconds=1_900_000_000)
    task = create(stub, as_user(ALICE), title="t", due_date=due, assigned_to=BOB)
    changed = update(stub, as_user(ALICE), task.id, ["priority", "due_date", "assigned_to"],
                     priority=pb.TASK_PRIORITY_URGENT, title="not in the mask")
    assert changed.priority == pb.TASK_PRIORITY_URGENT
    assert changed.title == "t"
    assert not changed.HasField("due_date") and not changed.HasField("assigned_to")
    error = grpc_error(update, stub, as_user(ALICE), task.id, ["title", "owner"], title="x")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask" in field_violations(error)


def test_an_update_without_changes_keeps_the_version(stub, as_user) -> None:
    task = create(stub, as_user(ALICE), title="t")
    assert update(stub, as_user(ALICE), task.id, ["title"], title="t").version == 1


def test_a_stale_expected_version_is_refused(stub, as_user) -> None:
    task = create(stub, as_user(ALICE), title="t")
    update(stub, as_user(ALICE), task.id, ["title"], expected_version=1, title="v2")
    error = grpc_error(update, stub, as_user(ALICE), task.id, ["title"], expected_version=1, title="v3")
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_MISMATCH")


def test_concurrent_updates_of_one_version_exactly_one_wins(stub, as_user) -> None:
    for _ in range(5):  # a few rounds, so the race really happens
        task = create(stub, as_user(ALICE), title="contended")
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def attempt(title: str, task_id: int = task.id, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                update(stub, as_user(ALICE), task_id, ["title"], expected_version=1, title=title)
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(reason(error))

        threads = [threading.Thread(target=attempt, args=(title,)) for title in ("left", "right")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["VERSION_MISMATCH", "ok"]
        assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE)).version == 2


def test_idempotent_create(stub, as_user, database) -> None:
    first = create(stub, as_user(ALICE), "key-1", title="once")
    again = create(stub, as_user(ALICE), "key-1", title="once")
    assert again == first
    # Another user's identical key is another request.
    assert create(stub, as_user(BOB), "key-1", title="once").id != first.id
    error = grpc_error(create, stub, as_user(ALICE), "key-1", title="other body")
    assert (error.code(), reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED")
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Task).where(Task.created_by == ALICE)) == 1
    assert [event.type for event in outbox_events(database) if event.subject == str(first.id)] == [
        "taskmgr.task.created"
    ]
    too_long = grpc_error(create, stub, as_user(ALICE), "k" * 256, title="x")
    assert "request_id" in field_violations(too_long)


def test_concurrent_creates_with_one_key_make_one_task(stub, as_user, database) -> None:
    start = threading.Barrier(4)
    ids: list[int] = []

    def attempt() -> None:
        start.wait()
        ids.append(create(stub, as_user(ALICE), "same-key", title="raced").id)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
        assert session.scalar(select(func.count()).select_from(Task)) == 1


@pytest.mark.parametrize(("user_id", "problem"), [(UNVERIFIED, "verified"), (999, "No user")])
def test_assign_to_unknown_or_unverified_user(stub, as_user, user_id: int, problem: str) -> None:
    task = create(stub, as_user(ALICE), title="t")
    request = pb.AssignTaskRequest(id=task.id, user_id=user_id)
    error = grpc_error(stub.AssignTask, request, metadata=as_user(ALICE))
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "ASSIGNEE_INVALID")
    assert problem in field_violations(error)["user_id"]
    error = grpc_error(update, stub, as_user(ALICE), task.id, ["assigned_to"], assigned_to=user_id)
    assert list(field_violations(error)) == ["assigned_to"]
    error = grpc_error(create, stub, as_user(ALICE), title="t", assigned_to=user_id)
    assert list(field_violations(error)) == ["assigned_to"]


def test_assignee_check_forwards_the_callers_token_with_a_deadline(stub, as_user, fake_users) -> None:
    servicer = fake_users.servicer
    metadata = as_user(ALICE)
    task = create(stub, metadata, title="t")
    assigned = stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=BOB), metadata=metadata)
    assert assigned.assigned_to == BOB
    [call] = servicer.calls
    assert call["id"] == BOB
    assert call["metadata"]["authorization"] == dict(metadata)["authorization"]
    assert call["metadata"]["x-request-id"]
    assert 0 < call["time_remaining"] <= 2.05  # a 2 s deadline; its clock is read on the other side
    unassigned = stub.AssignTask(pb.AssignTaskRequest(id=task.id), metadata=metadata)
    assert not unassigned.HasField("assigned_to")
    assert len(servicer.calls) == 1  # unassigning asks nobody


def test_user_svc_down_is_unavailable(stub, as_user, fake_users) -> None:
    task = create(stub, as_user(ALICE), title="t")
    fake_users.server.stop(0)
    request = pb.AssignTaskRequest(id=task.id, user_id=BOB)
    error = grpc_error(stub.AssignTask, request, metadata=as_user(ALICE))
    assert (error.code(), reason(error)) == (grpc.StatusCode.UNAVAILABLE, "USER_SERVICE_UNAVAILABLE")

