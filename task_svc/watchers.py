"""Who watches a task and who is told about what happens to it.

- The creator and the assignee watch a task from the start (a new assignee starts
  watching when assigned); anyone who can see the task may watch or unwatch it.
- On every change, comment or mention, each watcher who can see the task now
  (task_svc.permissions, the same rule as reading it) is told once, and the actor never:
  someone who lost sight of a task (left its project, was unassigned from a personal
  task) keeps their watcher row but is not told, and is told again if they regain sight.
- Who is told is decided here, in the transaction of the change, and carried in the
  event (TaskPeople.recipients), so notify_svc never reads task tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common.db import RESULT_UNREAD, execute_unread, utcnow
from task_svc.memberships import Role
from task_svc.models import ProjectMember, Task, Watcher
from task_svc.permissions import Owned, Viewer, can_see


@dataclass(frozen=True)
class Candidate:
    """Someone who may be told: a watcher, or a user a comment mentions."""

    user_id: int
    staff: bool = False


def who_is_told(
    task: Owned, actor: int, candidates: Iterable[Candidate], roles: dict[int, Role],
    *, always: Iterable[int] = (), exclude: Iterable[int] = (),
) -> list[int]:
    """The user ids to tell, each once, in a stable order: the `candidates` who can see
    `task` (`roles`: their roles in its project), then `always` (told whether or not they
    can see it: an unassigned user), never `actor` nor anyone in `exclude` (told by
    another event of the same change)."""
    skip = {actor, *exclude}
    told = [
        c.user_id for c in candidates
        if c.user_id not in skip and can_see(Viewer(c.user_id, c.staff), task, roles.get(c.user_id))
    ]
    told += [user_id for user_id in always if user_id is not None and user_id not in skip]
    return list(dict.fromkeys(told))


def recipients(
    session: Session, task: Task, actor: int, *, extra: Iterable[Candidate] = (),
    always: Iterable[int] = (), exclude: Iterable[int] = (), watchers: bool = True,
) -> list[int]:
    """who_is_told for `task`'s watchers (unless not `watchers`) and `extra` candidates:
    two statements, whatever the number of watchers."""
    candidates = [
        Candidate(user_id, staff)
        for user_id, staff in session.execute(
            select(Watcher.user_id, Watcher.staff).where(Watcher.task_id == task.id).order_by(Watcher.user_id)
        )
    ] if watchers else []
    candidates += list(extra)
    roles = roles_of(session, task.project_id, {c.user_id for c in candidates})
    return who_is_told(task, actor, candidates, roles, always=always, exclude=exclude)


def roles_of(session: Session, project_id: int | None, user_ids: set[int]) -> dict[int, Role]:
    """The roles of those of `user_ids` who are members of the project (None: a personal
    task, no one): one statement, none when there is nobody to look up."""
    if project_id is None or not user_ids:
        return {}
    rows = session.execute(
        select(ProjectMember.user_id, ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id.in_(user_ids),
        )
    )
    return {user_id: Role(role) for user_id, role in rows}


# watch's statement on each engine, built once (SQLAlchemy's compiled cache finds it).
_WATCH = {
    dialect.dialect.name: dialect.insert(Watcher.__table__).on_conflict_do_nothing().inline()
    .execution_options(**{RESULT_UNREAD: True})
    for dialect in (postgresql, sqlite)
}


def watch(session: Session, task_id: int, user_id: int, *, staff: bool = False) -> None:
    """`user_id` watches the task (already watching: nothing changes). One statement
    that a concurrent watch of the same pair cannot make fail, and whose result is not
    read (pipelined: common.db)."""
    execute_unread(
        session, _WATCH[session.get_bind().dialect.name],
        {"task_id": task_id, "user_id": user_id, "staff": staff, "created_at": utcnow()},
    )


def unwatch(session: Session, task_id: int, user_id: int) -> None:
    session.query(Watcher).filter_by(task_id=task_id, user_id=user_id).delete(synchronize_session=False)


def is_watching(session: Session, task_id: int, user_id: int) -> bool:
    return session.get(Watcher, (task_id, user_id)) is not None
