"""A task's activity: every change, who made it and when, written by the task events
(task_svc.events) in the transaction of the change, so an entry exists exactly when
its change committed.

Values are stored as text, as the API shows them: statuses and priorities by their
lower-case names, times in RFC 3339 (section 5.6, UTC, `Z`), ids in decimal; None
for no value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from common.db import RESULT_UNREAD, execute_unread, utcnow
from task_svc.fields import PRIORITY_NAMES, UPDATABLE
from task_svc.models import Activity, Task


class Kind(StrEnum):
    CREATED = "created"
    FIELD_CHANGED = "field_changed"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    MOVED = "moved"
    LABELS_CHANGED = "labels_changed"
    COMMENT_ADDED = "comment_added"
    COMMENT_DELETED = "comment_deleted"


def as_text(field: str, value: Any) -> str | None:
    """A field's stored value as activity text."""
    if value is None:
        return None
    if field == "priority" and isinstance(value, int):
        return PRIORITY_NAMES[value]
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


# record's statement, built once (SQLAlchemy's compiled cache finds it); no ORM object:
# the unit of work of one row costs more CPU than the rest of the change.
_RECORD = insert(Activity.__table__).inline().execution_options(**{RESULT_UNREAD: True})


def record(
    session: Session, task_id: int, actor: int, kind: Kind, *, field: str | None = None,
    old: Any = None, new: Any = None, comment_id: int | None = None,
) -> None:
    """Writes one entry: an INSERT whose result is not read (pipelined: common.db)."""
    execute_unread(session, _RECORD, {
        "task_id": task_id, "actor": actor, "kind": kind.value, "field": field,
        "old_value": as_text(field or "", old), "new_value": as_text(field or "", new),
        "comment_id": comment_id, "created_at": utcnow(),
    })


def changed(session: Session, task: Task, actor: int, old: Mapping[str, Any]) -> None:
    """One entry per changed field of `task` (`old`: their values before, as stored);
    a changed project is a move, a changed assignee is left to `assigned`. In the
    fields' order (task_svc.fields.UPDATABLE), whatever order the request named them in."""
    for field, before in sorted(old.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER))):
        after = getattr(task, field)
        if field == "project_id":
            record(session, task.id, actor, Kind.MOVED, field=field, old=before, new=after)
        elif field == "assigned_to":
            continue  # the task_assigned event of the same change records it
        else:
            record(session, task.id, actor, Kind.FIELD_CHANGED, field=field, old=before, new=after)


_ORDER = {name: position for position, name in enumerate(UPDATABLE)}


def assigned(session: Session, task: Task, actor: int, previous: int | None) -> None:
    kind = Kind.UNASSIGNED if task.assigned_to is None else Kind.ASSIGNED
    record(session, task.id, actor, kind, field="assigned_to", old=previous, new=task.assigned_to)


def page(session: Session, task_id: int, after: int, size: int) -> list[Activity]:
    """Up to `size` + 1 entries of the task after id `after`, oldest first."""
    return list(session.scalars(
        select(Activity).where(Activity.task_id == task_id, Activity.id > after)
        .order_by(Activity.id).limit(size + 1)
    ))
