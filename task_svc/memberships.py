"""Roles in a project and what each may do: plain rules, no I/O.

- `viewer` reads the project, its members and its tasks;
- `member` also creates, edits, assigns, moves and deletes the project's tasks;
- `owner` also manages the project (name, archive, delete), its members and its labels
  (members and viewers list the labels; members put them on tasks, as any task edit).

Staff may do everything an owner may, in every project. A project always keeps at
least one owner: the last one can be neither demoted nor removed (nor leave).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from common.errors import FailedPrecondition, NotFound, PermissionDenied


class Role(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    OWNER = "owner"


class Action(StrEnum):
    READ = "read"  # the project, its members, its tasks
    EDIT_TASKS = "edit_tasks"  # create, change, assign, move in or out, delete tasks
    MANAGE = "manage"  # rename, archive, delete the project; add, change, remove members
    LEAVE = "leave"  # remove oneself
    MANAGE_LABELS = "manage_labels"  # create, rename, recolour, delete labels


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ, Action.LEAVE}),
    Role.MEMBER: frozenset({Action.READ, Action.LEAVE, Action.EDIT_TASKS}),
    Role.OWNER: frozenset(Action),
}
DEFAULT_ROLE = Role.MEMBER


def allowed(role: Role | None, action: Action, *, is_staff: bool = False) -> bool:
    """Whether a user with `role` in a project (None: not a member) may do `action`."""
    if is_staff:
        return True
    return role is not None and action in ALLOWED[role]


def check_allowed(project_id: int, role: Role | None, action: Action, *, is_staff: bool = False) -> None:
    """NOT_FOUND for a project the user may not see at all (as one that does not exist),
    PERMISSION_DENIED for an action their role does not allow."""
    if not allowed(role, Action.READ, is_staff=is_staff):
        raise project_not_found(project_id)
    if not allowed(role, action, is_staff=is_staff):
        raise PermissionDenied(
            "PROJECT_ROLE_FORBIDS", f"As a {role} of project {project_id} you may not {_WORDS[action]}."
        )


def check_keeps_an_owner(owners: Collection[int], user_id: int, new_role: Role | None) -> None:
    """FAILED_PRECONDITION (LAST_OWNER) when changing `user_id` to `new_role` (None:
    removing them) would leave the project with no owner; `owners` are its owners now."""
    if new_role == Role.OWNER or user_id not in owners:
        return
    if len(owners) <= 1:
        raise FailedPrecondition(
            "LAST_OWNER", "A project keeps at least one owner: make someone else an owner first."
        )


def project_not_found(project_id: int) -> NotFound:
    return NotFound("PROJECT_NOT_FOUND", f"No project {project_id}.")


_WORDS = {
    Action.READ: "read it",
    Action.EDIT_TASKS: "create or change its tasks",
    Action.MANAGE: "manage the project or its members",
    Action.LEAVE: "leave it",
    Action.MANAGE_LABELS: "create, change or delete its labels",
}
