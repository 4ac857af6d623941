"""Who sees a task and who may change what."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.errors import NotFound, PermissionDenied
from task_svc.permissions import (
    Viewer,
    can_see,
    check_may_assign,
    check_may_change,
    check_may_delete,
    check_visible,
)

CREATOR, ASSIGNEE, STRANGER, STAFF = 1, 2, 3, 4


@dataclass
class FakeTask:
    id: int = 10
    created_by: int = CREATOR
    assigned_to: int | None = ASSIGNEE
    project_id: int | None = None


def viewer(user_id: int) -> Viewer:
    return Viewer(user_id=user_id, is_staff=user_id == STAFF)


@pytest.mark.parametrize(
    ("user_id", "sees"), [(CREATOR, True), (ASSIGNEE, True), (STRANGER, False), (STAFF, True)]
)
def test_visibility(user_id: int, sees: bool) -> None:
    assert can_see(viewer(user_id), FakeTask()) is sees


def test_an_invisible_task_is_not_found_like_a_missing_one() -> None:
    with pytest.raises(NotFound) as hidden:
        check_visible(viewer(STRANGER), FakeTask(), 10)
    with pytest.raises(NotFound) as missing:
        check_visible(viewer(STRANGER), None, 10)
    assert hidden.value.reason == missing.value.reason == "TASK_NOT_FOUND"
    assert hidden.value.message == missing.value.message


def test_an_unassigned_task_is_invisible_to_others() -> None:
    assert not can_see(viewer(STRANGER), FakeTask(assigned_to=None))


@pytest.mark.parametrize("user_id", [CREATOR, STAFF])
def test_creator_and_staff_may_change_delete_and_assign(user_id: int) -> None:
    check_may_change(viewer(user_id), FakeTask(), {"title", "description", "status", "assigned_to"})
    check_may_delete(viewer(user_id), FakeTask())
    check_may_assign(viewer(user_id), FakeTask())


def test_assignee_may_change_the_status() -> None:
    check_may_change(viewer(ASSIGNEE), FakeTask(), {"status"})


@pytest.mark.parametrize("fields", [{"title"}, {"status", "priority"}, {"assigned_to"}, {"due_date"}])
def test_assignee_may_change_nothing_but_the_status(fields: set[str]) -> None:
    with pytest.raises(PermissionDenied) as refused:
        check_may_change(viewer(ASSIGNEE), FakeTask(), fields)
    assert refused.value.reason == "ASSIGNEE_MAY_ONLY_CHANGE_STATUS"


def test_assignee_may_not_delete_or_assign() -> None:
    with pytest.raises(PermissionDenied):
        check_may_delete(viewer(ASSIGNEE), FakeTask())
    with pytest.raises(PermissionDenied):
        check_may_assign(viewer(ASSIGNEE), FakeTask())


def test_someone_else_may_change_nothing() -> None:
    with pytest.raises(PermissionDenied):
        check_may_change(viewer(STRANGER), FakeTask(), {"status"})
