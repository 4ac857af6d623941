"""The role table (role x action -> allowed), the 404/403 split, the last-owner rule,
and who sees and changes a project task."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.errors import FailedPrecondition, NotFound, PermissionDenied
from task_svc.memberships import Action, Role, allowed, check_allowed, check_keeps_an_owner
from task_svc.permissions import Viewer, can_see, check_may_assign, check_may_change, check_may_delete

R, E, M, L, ML = Action.READ, Action.EDIT_TASKS, Action.MANAGE, Action.LEAVE, Action.MANAGE_LABELS
TABLE = {
    #            read   edit   manage leave  manage labels (listing them is read)
    Role.OWNER: {R: True, E: True, M: True, L: True, ML: True},
    Role.MEMBER: {R: True, E: True, M: False, L: True, ML: False},
    Role.VIEWER: {R: True, E: False, M: False, L: True, ML: False},
    None: {R: False, E: False, M: False, L: False, ML: False},  # not a member
}


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [(role, action, expected) for role, row in TABLE.items() for action, expected in row.items()],
)
def test_role_table(role: Role | None, action: Action, expected: bool) -> None:
    assert allowed(role, action) is expected


def test_the_table_covers_every_role_and_action() -> None:
    assert set(TABLE) == {*Role, None}
    assert all(set(row) == set(Action) for row in TABLE.values())


@pytest.mark.parametrize("role", [*Role, None])
@pytest.mark.parametrize("action", list(Action))
def test_staff_may_do_everything(role: Role | None, action: Action) -> None:
    assert allowed(role, action, is_staff=True)


def test_a_non_member_gets_not_found_and_a_member_without_the_right_forbidden() -> None:
    with pytest.raises(NotFound) as hidden:
        check_allowed(7, None, Action.MANAGE)
    assert hidden.value.reason == "PROJECT_NOT_FOUND"
    with pytest.raises(PermissionDenied) as refused:
        check_allowed(7, Role.VIEWER, Action.EDIT_TASKS)
    assert refused.value.reason == "PROJECT_ROLE_FORBIDS"
    check_allowed(7, Role.OWNER, Action.MANAGE)


@pytest.mark.parametrize(
    ("owners", "user_id", "new_role", "refused"),
    [
        ([1], 1, Role.MEMBER, True),  # demoting the last owner
        ([1], 1, Role.VIEWER, True),
        ([1], 1, None, True),  # the last owner leaving or removed
        ([1], 1, Role.OWNER, False),  # staying owner
        ([1, 2], 1, None, False),  # another owner remains
        ([1, 2], 2, Role.VIEWER, False),
        ([1], 3, None, False),  # not an owner: nothing changes for the owners
        ([1], 3, Role.OWNER, False),
    ],
)
def test_a_project_keeps_an_owner(
    owners: list[int], user_id: int, new_role: Role | None, refused: bool
) -> None:
    if refused:
        with pytest.raises(FailedPrecondition) as error:
            check_keeps_an_owner(owners, user_id, new_role)
        assert error.value.reason == "LAST_OWNER"
    else:
        check_keeps_an_owner(owners, user_id, new_role)


@dataclass
class ProjectTask:
    id: int = 10
    created_by: int = 1
    assigned_to: int | None = 2
    project_id: int | None = 5


@pytest.mark.parametrize(
    ("role", "sees", "edits"),
    [(Role.OWNER, True, True), (Role.MEMBER, True, True), (Role.VIEWER, True, False), (None, False, False)],
)
def test_a_project_task_follows_the_role_not_the_creator(role: Role | None, sees: bool, edits: bool) -> None:
    # Users 1 (creator) and 2 (assignee) too: without a role they see nothing of it.
    for user_id in (1, 2, 3):
        viewer = Viewer(user_id=user_id, is_staff=False)
        assert can_see(viewer, ProjectTask(), role) is sees
        for check in (
            lambda: check_may_change(viewer, ProjectTask(), {"status"}, role),
            lambda: check_may_delete(viewer, ProjectTask(), role),
            lambda: check_may_assign(viewer, ProjectTask(), role),
        ):
            if edits:
                check()
            else:
                with pytest.raises(PermissionDenied):
                    check()


def test_staff_see_and_edit_any_project_task() -> None:
    staff = Viewer(user_id=9, is_staff=True)
    assert can_see(staff, ProjectTask(), None)
    check_may_change(staff, ProjectTask(), {"title"}, None)
