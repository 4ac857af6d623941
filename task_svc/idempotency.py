"""Idempotent creates (AIP-155; the IETF Idempotency-Key draft): a request_id names
one create of one user for 24 h.

The first create stores (created_by, request_id), a hash of the request and the first
reply (the task as it was answered), in the same transaction as the task. A repeat
with the same request answers that reply again, as Stripe's idempotency keys do: the
same status and body, also after the task was changed or deleted (rest-contract.md,
"returns the first status and body again"). Nothing new is shown by it: a key belongs
to one caller, and the reply is what that caller was already told. The same key with
another request is refused. Two concurrent creates with one key cannot both succeed:
the unique constraint lets one commit, and the other answers its reply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from common.contract_rules import string_rules
from common.db import RESULT_UNREAD, utcnow
from common.errors import FailedPrecondition, invalid
from common.validation import text_problem
from task_svc.models import IdempotencyKey, Task
from task_svc.permissions import task_not_found
from taskmgr.task.v1 import task_service_pb2 as pb

KEY_LIFETIME = dt.timedelta(hours=24)
KEY_MAX = string_rules(pb.CreateTaskRequest.DESCRIPTOR, "request_id").max_len
_TIMES = frozenset({"due_date", "created_at", "updated_at"})


def check_request_id(request_id: str) -> None:
    problem = text_problem(request_id, max_length=KEY_MAX)
    if problem:
        raise invalid({"request_id": problem})


def request_hash(request: Mapping[str, Any]) -> str:
    """A fingerprint of the normalized request (defaults filled in, times in UTC)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot(task: Task) -> dict[str, Any]:
    """The task's columns as JSON (times as RFC 3339 strings): the reply to keep."""
    values = {column.key: getattr(task, column.key) for column in Task.__table__.columns}
    return {name: value.isoformat() if name in _TIMES and value else value for name, value in values.items()}


def _restored(reply: Mapping[str, Any]) -> Task:
    """A detached Task holding a kept reply (never added to a session)."""
    return Task(**{
        name: dt.datetime.fromisoformat(value) if name in _TIMES and value else value
        for name, value in reply.items()
    })


def replay(session: Session, created_by: int, request_id: str, digest: str) -> Task | None:
    """The first reply of an earlier create by `created_by` with this key, or None if
    there is none (any more). FAILED_PRECONDITION when the key came with another request."""
    key = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.created_by == created_by,
            IdempotencyKey.request_id == request_id,
            IdempotencyKey.created_at > utcnow() - KEY_LIFETIME,
        )
    )
    if key is None:
        return None
    if key.request_hash != digest:
        # The edge answers this reason with 422 (grpc.md's table has no 422 of its own).
        raise FailedPrecondition(
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was already used with a different request.",
        )
    if key.response is not None:
        return _restored(key.response)
    # A key from before the first reply was kept: only the caller's own task, made no
    # later than the key (an id reused on SQLite before migration 0002 is someone else's).
    task = session.get(Task, key.task_id)
    if task is None or task.created_by != created_by or task.created_at > key.created_at:
        raise task_not_found(key.task_id)
    return task


# remember's statements, built once; neither result is read (pipelined: common.db).
_UNREAD = {RESULT_UNREAD: True}
_KEYS = IdempotencyKey.__table__
_FORGET_EXPIRED = delete(_KEYS).where(
    _KEYS.c.created_by == bindparam("by"), _KEYS.c.request_id == bindparam("key"),
    _KEYS.c.created_at <= bindparam("expired"),
).execution_options(**_UNREAD)
_REMEMBER = insert(_KEYS).inline().execution_options(**_UNREAD)


def remember(session: Session, created_by: int, request_id: str, digest: str, task: Task) -> None:
    """Stores the key and the reply (`task`, written) in the create's transaction,
    replacing an expired key. A concurrent duplicate fails on the unique constraint
    (IntegrityError), here or, pipelined, at the create's commit."""
    now = utcnow()
    connection = session.connection()
    connection.execute(_FORGET_EXPIRED, {"by": created_by, "key": request_id, "expired": now - KEY_LIFETIME})
    connection.execute(_REMEMBER, {
        "created_by": created_by, "request_id": request_id, "request_hash": digest, "task_id": task.id,
        "response": snapshot(task), "created_at": now,
    })
