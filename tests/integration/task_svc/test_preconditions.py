"""If-Match / If-None-Match as task_svc checks them (taskmgr.api.v1.VersionMatch), on
PostgreSQL and on the embedded SQLite: every change (update, assign, delete) honours
them, lists and `*` work, and the check is atomic with the write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from common.settings import Settings
from task_svc.server import build
from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from tests.integration.task_svc.support import ALICE, BOB, KNOWN_USERS, grpc_error, reason
from tests.support.tokens import TestIssuer

ISSUER = TestIssuer()
MISMATCH = (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_MISMATCH")


class KnownUsers:
    def check_assignable(self, user_id: int) -> str | None:
        return None if KNOWN_USERS.get(user_id) else "No user with this id."


@pytest.fixture(params=["postgresql", "sqlite"])
def stub(request, tmp_path) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""
    settings = Settings(
        environment="test", var_dir=tmp_path, task_svc_database_url=url, notify_svc_addr="127.0.0.1:1"
    )
    server = build(settings, 0, verifier=ISSUER.verifier(), user_directory=KnownUsers()).start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield task_service_pb2_grpc.TaskServiceStub(channel)
    server.stop(0)


def me(user_id: int = ALICE) -> list[tuple[str, str]]:
    return ISSUER.metadata(user_id)


def new_task(stub, **fields) -> pb.Task:  # noqa: ANN001
    task = pb.Task(title="t", **fields)
    return stub.CreateTask(pb.CreateTaskRequest(task=task), metadata=me())


def version_of(stub, task_id: int) -> int:  # noqa: ANN001
    return stub.GetTask(pb.GetTaskRequest(id=task_id), metadata=me()).version


def update(stub, task_id: int, user_id: int = ALICE, **conditions) -> pb.Task:  # noqa: ANN001
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=task_id, title="changed"), update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        **conditions,
    )
    return stub.UpdateTask(request, metadata=me(user_id))


def assign(stub, task_id: int, user_id: int | None = BOB, **conditions) -> pb.Task:  # noqa: ANN001
    return stub.AssignTask(pb.AssignTaskRequest(id=task_id, user_id=user_id, **conditions), metadata=me())


def delete(stub, task_id: int, **conditions) -> None:  # noqa: ANN001
    stub.DeleteTask(pb.DeleteTaskRequest(id=task_id, **conditions), metadata=me())


CHANGES: dict[str, Callable] = {"update": update, "assign": assign, "delete": delete}


def stale(stub) -> pb.Task:  # noqa: ANN001
    """A task at version 2, as a client holding version 1 would meet it."""
    task = new_task(stub)
    mask = field_mask_pb2.FieldMask(paths=["description"])
    second = pb.UpdateTaskRequest(task=pb.Task(id=task.id, description="v2"), update_mask=mask)
    stub.UpdateTask(second, metadata=me())
    return task


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_refuses_a_stale_if_match(stub, change: str) -> None:
    task = stale(stub)
    error = grpc_error(CHANGES[change], stub, task.id, if_match=VersionMatch(versions=[1]))
    assert (error.code(), reason(error)) == MISMATCH
    after = stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=me())  # still there, unchanged
    assert (after.version, after.title, after.HasField("assigned_to")) == (2, "t", False)


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize(
    "condition",
    [VersionMatch(versions=[9, 2]), VersionMatch(any=True)],
    ids=["a list naming the current version", "any"],
)
def test_every_change_proceeds_when_if_match_holds(stub, change: str, condition: VersionMatch) -> None:
    task = stale(stub)
    CHANGES[change](stub, task.id, if_match=condition)
    if change == "delete":
        assert grpc_error(version_of, stub, task.id).code() == grpc.StatusCode.NOT_FOUND
    else:
        assert version_of(stub, task.id) == 3


@pytest.mark.parametrize("change", CHANGES)
def test_an_if_match_naming_no_version_fails(stub, change: str) -> None:
    # The edge sends this for `If-Match: "abc"` or `W/"1"`: given, but no version can match.
    task = new_task(stub)
    error = grpc_error(CHANGES[change], stub, task.id, if_match=VersionMatch())
    assert (error.code(), reason(error)) == MISMATCH
    assert version_of(stub, task.id) == 1


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize(
    ("condition", "proceeds"),
    [
        (VersionMatch(versions=[1]), False),
        (VersionMatch(any=True), False),
        (VersionMatch(versions=[7]), True),
    ],
)
def test_if_none_match(stub, change: str, condition: VersionMatch, proceeds: bool) -> None:
    task = new_task(stub)
    if proceeds:
        CHANGES[change](stub, task.id, if_none_match=condition)
    else:
        error = grpc_error(CHANGES[change], stub, task.id, if_none_match=condition)
        assert (error.code(), reason(error)) == MISMATCH
        assert version_of(stub, task.id) == 1


def test_a_missing_task_is_not_found_before_any_precondition(stub) -> None:
    # RFC 9110 section 13.2.1: failures found before the change take precedence over 412.
    for change in CHANGES.values():
        error = grpc_error(change, stub, 987654, if_match=VersionMatch(versions=[1]))
        assert error.code() == grpc.StatusCode.NOT_FOUND


def test_permission_is_decided_before_the_precondition(stub) -> None:
    task = stale(stub)
    assign(stub, task.id, BOB)  # Bob sees it now, and may change only its status
    error = grpc_error(update, stub, task.id, BOB, if_match=VersionMatch(versions=[1]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("change", ["assign", "delete"])
def test_the_version_check_is_atomic_with_the_write(stub, change: str) -> None:
    """Two clients holding the same version: exactly one of them changes the task."""
    for _ in range(4):  # a few rounds, so the race really happens
        task = new_task(stub)
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def attempt(task_id: int = task.id, barrier: threading.Barrier = start) -> None:
            barrier.wait()
            try:
                if change == "assign":
                    # Different assignees, so both would be a change.
                    assignee = threading.current_thread().user_id
                    assign(stub, task_id, assignee, if_match=VersionMatch(versions=[1]))
                else:
                    delete(stub, task_id, if_match=VersionMatch(versions=[1]))
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(reason(error) or error.code().name)

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for thread, assignee in zip(threads, (BOB, ALICE), strict=True):
            thread.user_id = assignee
            thread.start()
        for thread in threads:
            thread.join()
        # The loser sees the winner's version (412), or, for a delete, no task at all (404).
        assert outcomes.count("ok") == 1, outcomes
        assert set(outcomes) - {"ok"} <= {"VERSION_MISMATCH", "NOT_FOUND", "TASK_NOT_FOUND"}
