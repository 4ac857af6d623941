"""Who may see a task and who may change what.

- A personal task (no project) is seen by its creator and its assignee; a task of a
  project by every member of the project, whatever their role, and by nobody else
  (its creator included, once they left); staff see all. A task the caller may not see
  is NOT_FOUND, exactly like one that does not exist, so ids of other people's tasks
  leak nothing.
- Personal tasks: the creator and staff may change anything, delete and assign; the
  assignee may change the status only; anyone else may change nothing.
- Project tasks: what the caller's role allows (task_svc.memberships): owners, members
  and staff change, assign and delete them; viewers only read.

`role` is the caller's role in the task's project (None: not a member, or a personal
task), read in the same transaction as the task.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from common.errors import NotFound, PermissionDenied
from task_svc.memberships import Action, Role, allowed

# What the assignee of someone else's task may change.
ASSIGNEE_FIELDS = frozenset({"status"})


@dataclass(frozen=True)
class Viewer:
    user_id: int
    is_staff: bool


class Owned(Protocol):
    """The part of a task the rules look at."""

    id: int
    created_by: int
    assigned_to: int | None
    project_id: int | None


def task_not_found(task_id: int) -> NotFound:
    return NotFound("TASK_NOT_FOUND", f"No task {task_id}.")


def can_see(viewer: Viewer, task: Owned, role: Role | None = None) -> bool:
    if viewer.is_staff:
        return True
    if task.project_id is not None:
        return allowed(role, Action.READ)
    return viewer.user_id in (task.created_by, task.assigned_to)


def check_visible(viewer: Viewer, task: Owned | None, task_id: int, role: Role | None = None) -> Owned:
    if task is None or not can_see(viewer, task, role):
        raise task_not_found(task_id)
    return task


def _is_manager(viewer: Viewer, task: Owned) -> bool:
    return viewer.is_staff or viewer.user_id == task.created_by


def check_may_edit_project_task(viewer: Viewer, task: Owned, role: Role | None) -> None:
    """PERMISSION_DENIED unless `viewer` may edit the tasks of `task`'s project."""
    if not allowed(role, Action.EDIT_TASKS, is_staff=viewer.is_staff):
        raise PermissionDenied(
            "PROJECT_ROLE_FORBIDS",
            f"As a {role or 'non-member'} of project {task.project_id} you may not change its tasks.",
        )


def check_may_change(viewer: Viewer, task: Owned, fields: Collection[str], role: Role | None = None) -> None:
    """PERMISSION_DENIED unless `viewer` may change every one of `fields`."""
    if task.project_id is not None:
        check_may_edit_project_task(viewer, task, role)
        return
    if _is_manager(viewer, task):
        return
    if viewer.user_id == task.assigned_to:
        refused = sorted(set(fields) - ASSIGNEE_FIELDS)
        if refused:
            raise PermissionDenied(
                "ASSIGNEE_MAY_ONLY_CHANGE_STATUS",
                f"As the assignee you may change the status only, not: {', '.join(refused)}.",
            )
        return
    raise _not_the_creator("change")


def check_may_delete(viewer: Viewer, task: Owned, role: Role | None = None) -> None:
    if task.project_id is not None:
        check_may_edit_project_task(viewer, task, role)
    elif not _is_manager(viewer, task):
        raise _not_the_creator("delete")


def check_may_assign(viewer: Viewer, task: Owned, role: Role | None = None) -> None:
    if task.project_id is not None:
        check_may_edit_project_task(viewer, task, role)
    elif not _is_manager(viewer, task):
        raise _not_the_creator("assign")


def _not_the_creator(action: str) -> PermissionDenied:
    return PermissionDenied("NOT_TASK_CREATOR", f"Only the task's creator or staff may {action} it.")
