"""A task read for a change: the row locked, with everything the change's events need,
in one statement, so a pipelined change (Database.transaction(pipelined=True)) is two
PostgreSQL round trips: this read with BEGIN, then its writes with the COMMIT.

The statement reads, for the task `id` and the viewer `viewer`:
- the task's columns, locked as `lock` says: a change FOR NO KEY UPDATE (as its UPDATE
  would: rows that refer to the task, whose foreign key check takes FOR KEY SHARE, are
  not held up), a delete FOR UPDATE, a comment not at all (it changes no task; a task
  deleted meanwhile breaks its foreign key: NOT_FOUND);
- the viewer's role in the task's project (NULL: a personal task, or not a member);
- the label ids it carries (task_labels.carried_column);
- its watchers with their staff flag and their role in the task's project
  ("user:staff:role", comma-joined), whom its events tell (task_svc.watchers);
- the task's version as the statement's snapshot saw it (`seen_version`);
- the `extra` columns the caller asks for (a new comment's id, from its sequence).

At READ COMMITTED a lock that waited for another transaction answers the row as that
transaction left it, but the subqueries read the snapshot taken before the wait
(PostgreSQL docs, "Transaction Isolation", 13.2.1): the watchers a concurrent
assignment added would be missing. Then the locked version differs from `seen_version`
and `read` reads again, holding the lock now, with a snapshot taken after the winner
committed (one round trip more, only then); were they to differ still, it raises
StaleDataError: the caller tries again, as when a versioned UPDATE
finds the task changed. On SQLite the writer holds the database (BEGIN IMMEDIATE), so
both are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from common.db import RESULT_UNREAD, execute_unread, fetch_in_transaction
from task_svc import task_labels
from task_svc.memberships import Role
from task_svc.models import ProjectMember, Task, Watcher
from task_svc.permissions import Viewer, check_visible
from task_svc.watchers import Candidate

_SEEN = aliased(Task.__table__, name="seen")
_WATCHER_ROLE = aliased(ProjectMember.__table__, name="watcher_role")
_WATCHERS = (
    select(task_labels.CommaJoined(
        cast(Watcher.user_id, String) + ":" + case((Watcher.staff, "1"), else_="0") + ":"
        + func.coalesce(_WATCHER_ROLE.c.role, "")  # "": not a member
    ))
    .select_from(Watcher.__table__)
    .outerjoin(_WATCHER_ROLE, and_(
        _WATCHER_ROLE.c.project_id == Task.project_id, _WATCHER_ROLE.c.user_id == Watcher.user_id,
    ))
    .where(Watcher.task_id == Task.id)
    .correlate(Task.__table__)
    .scalar_subquery()
)



class Lock(Enum):
    CHANGE = {"key_share": True}  # FOR NO KEY UPDATE
    DELETE = {}  # FOR UPDATE
    NONE = None


@cache
def _statement(lock: Lock, extra: tuple[ColumnElement, ...]) -> Select:
    """The read, built once per lock and extra columns (SQLAlchemy's compiled cache finds it)."""
    statement = (
        select(
            Task.__table__, ProjectMember.role.label("viewer_role"), task_labels.carried_column(Task.id),
            _WATCHERS.label("watching"),
            select(_SEEN.c.version).where(_SEEN.c.id == Task.id).correlate(Task.__table__)
            .scalar_subquery().label("seen_version"),
            *(column.label(f"extra_{n}") for n, column in enumerate(extra)),
        )
        .outerjoin(ProjectMember, and_(
            ProjectMember.project_id == Task.project_id, ProjectMember.user_id == bindparam("viewer"),
        ))
        .where(Task.id == bindparam("id"))
    )
    if lock.value is not None:
        statement = statement.with_for_update(of=Task.__table__, **lock.value)
    return statement


_COLUMNS = tuple(column.key for column in Task.__table__.columns)


@dataclass
class LockedTask:
    """A task locked in the session's transaction; `task` is in no session (change it
    with `write`)."""

    task: Task
    role: Role | None  # the viewer's role in its project
    label_ids: list[int]
    watchers: list[Candidate]  # by user id
    roles: dict[int, Role] = field(default_factory=dict)  # the watchers' roles in its project
    extra: tuple = ()  # the values of the `extra` columns read

    def watching(self, *also: Candidate) -> tuple[list[Candidate], dict[int, Role]]:
        """The watchers, with `also` (who starts watching in the change), as
        events.task_assigned's `watching` takes them."""
        known = {c.user_id for c in self.watchers}
        candidates = self.watchers + [c for c in also if c.user_id not in known]
        return sorted(candidates, key=lambda c: c.user_id), dict(self.roles)


def read(
    session: Session, viewer: Viewer, task_id: int, *, lock: Lock = Lock.CHANGE,
    extra: tuple[ColumnElement, ...] = (),
) -> LockedTask:
    """The task if `viewer` may see it (else NOT_FOUND), locked; StaleDataError when a
    lock it waited for changed it (see the module docstring)."""
    row = None
    if task_id > 0:
        statement = _statement(lock, extra)
        parameters = {"id": task_id, "viewer": viewer.user_id}
        row = _first(fetch_in_transaction(session, statement, parameters))
        if row is not None and row.version != row.seen_version:
            row = _first(fetch_in_transaction(session, statement, parameters))  # the lock held: no wait
    role = Role(row.viewer_role) if row is not None and row.viewer_role is not None else None
    check_visible(viewer, row, task_id, role)
    if row.version != row.seen_version:
        raise StaleDataError(f"task {task_id} changed while its lock was awaited")
    task = Task(**{name: getattr(row, name) for name in _COLUMNS})
    watchers, roles = [], {}
    for entry in (row.watching or "").split(","):
        if entry:
            user_id, staff, member = entry.split(":", 2)
            watchers.append(Candidate(int(user_id), staff == "1"))
            if member:
                roles[int(user_id)] = Role(member)
    watchers.sort(key=lambda c: c.user_id)
    values = tuple(getattr(row, f"extra_{n}") for n in range(len(extra)))
    return LockedTask(task, role, task_labels.parse(row.label_ids), watchers, roles, values)


def _first(rows: Sequence[Any]) -> Any:
    return rows[0] if rows else None


_WRITE = (
    update(Task.__table__)
    .where(Task.id == bindparam("task_id"), Task.version == bindparam("read_version"))
    .execution_options(**{RESULT_UNREAD: True})
)


def write(session: Session, task: Task, values: dict) -> None:
    """Writes `values` (columns and their stored values) to the locked `task`, as a new
    version, and sets them on it: one UPDATE whose result is not read (pipelined), the
    version it read still required ("WHERE version = <read>") though the lock holds it."""
    values = {**values, "version": task.version + 1}
    execute_unread(session, _WRITE, {"task_id": task.id, "read_version": task.version, **values})
    for name, value in values.items():
        setattr(task, name, value)


_DELETE = (
    delete(Task.__table__)
    .where(Task.id == bindparam("task_id"), Task.version == bindparam("read_version"))
    .execution_options(**{RESULT_UNREAD: True})
)


def delete_task(session: Session, task: Task) -> None:
    """Deletes the locked `task` (its watchers, comments, activity and labels go with it:
    ON DELETE CASCADE): a DELETE whose result is not read (pipelined), as `write`."""
    execute_unread(session, _DELETE, {"task_id": task.id, "read_version": task.version})
