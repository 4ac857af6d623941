"""Ids are never handed out twice, and an idempotent replay answers the first reply,
never what has that id now: on PostgreSQL and on the embedded SQLite (conftest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import grpc
from google.protobuf import field_mask_pb2
from sqlalchemy import insert

from task_svc.idempotency import request_hash
from task_svc.models import IdempotencyKey
from task_svc.tasks import NewTask
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, bulk_insert, grpc_error, reason


def create(stub, metadata, request_id: str = "", **fields) -> pb.Task:  # noqa: ANN001
    request = pb.CreateTaskRequest(task=pb.Task(**fields), request_id=request_id)
    return stub.CreateTask(request, metadata=metadata)


def delete(stub, metadata, task_id: int) -> None:  # noqa: ANN001
    stub.DeleteTask(pb.DeleteTaskRequest(id=task_id), metadata=metadata)


def test_the_id_of_a_deleted_newest_task_is_never_handed_out_again(stub, as_user) -> None:
    older = create(stub, as_user(ALICE), title="older")
    newest = create(stub, as_user(ALICE), title="newest")
    delete(stub, as_user(ALICE), newest.id)
    delete(stub, as_user(ALICE), older.id)
    after = [create(stub, as_user(BOB), title=f"later {n}") for n in range(2)]
    assert min(task.id for task in after) > newest.id


def test_a_replay_after_delete_answers_the_first_reply_not_the_task_now_holding_the_id(
    stub, as_user
) -> None:
    # The reported attack: user A repeats an old key after deleting its task, while user B
    # created a private task meanwhile (on SQLite it used to get A's old id).
    first = create(stub, as_user(ALICE), "order-17", title="A's task", description="mine")
    delete(stub, as_user(ALICE), first.id)
    private = create(stub, as_user(BOB), title="B's private task", description="secret")
    again = create(stub, as_user(ALICE), "order-17", title="A's task", description="mine")
    assert again == first
    assert private.id != first.id
    assert "secret" not in str(again)


def test_a_replay_answers_the_first_reply_even_after_the_task_changed(stub, as_user) -> None:
    first = create(stub, as_user(ALICE), "k-change", title="before")
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=first.id, title="after"), update_mask=field_mask_pb2.FieldMask(paths=["title"])
    )
    assert stub.UpdateTask(request, metadata=as_user(ALICE)).version == first.version + 1
    again = create(stub, as_user(ALICE), "k-change", title="before")
    assert again == first  # same body, and so the same ETag (version)


def test_a_key_is_the_caller_s_own_another_user_s_same_key_is_a_new_create(stub, as_user) -> None:
    alice_s = create(stub, as_user(ALICE), "shared-key", title="same body")
    bob_s = create(stub, as_user(BOB), "shared-key", title="same body")
    assert bob_s.id != alice_s.id and bob_s.created_by == BOB
    assert create(stub, as_user(BOB), "shared-key", title="same body") == bob_s


def _legacy_key(database, created_by: int, request_id: str, task_id: int, created_at: dt.datetime) -> None:  # noqa: ANN001
    """A key as stored before migration 0003: no reply kept."""
    digest = request_hash(asdict(NewTask(title="legacy")))
    with database.transaction() as session:
        session.execute(
            insert(IdempotencyKey).values(
                created_by=created_by, request_id=request_id, request_hash=digest, task_id=task_id,
                created_at=created_at, response=None,
            )
        )


def test_a_key_without_a_kept_reply_never_answers_someone_else_s_task(stub, as_user, database) -> None:
    now = dt.datetime.now(dt.UTC)
    [bob_s] = bulk_insert(database, [{"title": "B's", "created_by": BOB, "created_at": now}])
    [own] = bulk_insert(database, [{"title": "legacy", "created_by": ALICE, "created_at": now}])
    [later] = bulk_insert(
        database, [{"title": "later", "created_by": ALICE, "created_at": now + dt.timedelta(seconds=5)}]
    )
    _legacy_key(database, ALICE, "points-at-bob", bob_s, now)
    _legacy_key(database, ALICE, "points-at-a-later-task", later, now)
    _legacy_key(database, ALICE, "points-at-own", own, now)
    for key in ("points-at-bob", "points-at-a-later-task"):
        error = grpc_error(create, stub, as_user(ALICE), key, title="legacy")
        assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")
    assert create(stub, as_user(ALICE), "points-at-own", title="legacy").id == own
