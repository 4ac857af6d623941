"""Idempotent creates (AIP-155): a request_id names one create of one user for 24 h.

The first create stores (created_by, request_id) with a hash of the request and the
new task's id, in the same transaction as the task. A repeat with the same request
answers that task; the same key with another request is refused. Two concurrent
creates with one key cannot both succeed: the unique constraint lets one commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from common.db import utcnow
from common.errors import FailedPrecondition, invalid
from common.validation import text_problem
from task_svc.models import IdempotencyKey

KEY_LIFETIME = dt.timedelta(hours=24)
KEY_MAX = 255


def check_request_id(request_id: str) -> None:
    problem = text_problem(request_id, max_length=KEY_MAX)
    if problem:
        raise invalid({"request_id": problem})


def request_hash(request: Mapping[str, Any]) -> str:
    """A fingerprint of the normalized request (defaults filled in, times in UTC)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replayed_task_id(session: Session, created_by: int, request_id: str, digest: str) -> int | None:
    """The task an earlier create with this key made, or None if there is none (any more)."""
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
    return key.task_id


def remember(session: Session, created_by: int, request_id: str, digest: str, task_id: int) -> None:
    """Stores the key in the create's transaction, replacing an expired one."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_by == created_by,
            IdempotencyKey.request_id == request_id,
            IdempotencyKey.created_at <= utcnow() - KEY_LIFETIME,
        )
    )
    session.add(
        IdempotencyKey(created_by=created_by, request_id=request_id, request_hash=digest, task_id=task_id)
    )
    session.flush()  # a concurrent duplicate fails here, on the unique constraint
