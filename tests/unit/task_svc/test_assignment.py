"""Every change of assignee asks the user directory; a fake one stands in for user_svc.

The tasks live in an in-memory SQLite database, so these run without any server.
"""

from __future__ import annotations

import pytest

from common.db import Database, migrate
from common.errors import InvalidArgument, Unavailable
from common.paging import PageTokens
from task_svc.assignees import NO_SUCH_USER, NOT_VERIFIED
from task_svc.permissions import Viewer
from task_svc.server import MIGRATIONS
from task_svc.tasks import NewTask, Tasks

CREATOR = Viewer(user_id=1, is_staff=False)
VERIFIED, UNVERIFIED = 2, 3


class FakeDirectory:
    def __init__(self) -> None:
        self.asked: list[int] = []
        self.down = False

    def check_assignable(self, user_id: int) -> str | None:
        self.asked.append(user_id)
        if self.down:
            raise Unavailable("USER_SERVICE_UNAVAILABLE", "down")
        return {VERIFIED: None, UNVERIFIED: NOT_VERIFIED}.get(user_id, NO_SUCH_USER)


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def tasks(directory: FakeDirectory) -> Tasks:
    database = Database("sqlite://")
    migrate(database, MIGRATIONS)
    yield Tasks(database, directory, PageTokens(b"k" * 32))
    database.dispose()


@pytest.mark.parametrize(("user_id", "problem"), [(UNVERIFIED, NOT_VERIFIED), (99, NO_SUCH_USER)])
def test_assign_refuses_unknown_and_unverified_users_on_user_id(
    tasks: Tasks, user_id: int, problem: str
) -> None:
    task = tasks.create(CREATOR, NewTask(title="t"))
    with pytest.raises(InvalidArgument) as error:
        tasks.assign(CREATOR, task.id, user_id)
    assert error.value.reason == "ASSIGNEE_INVALID"
    assert error.value.fields == {"user_id": [problem]}


def test_create_and_update_name_the_assigned_to_field(tasks: Tasks) -> None:
    with pytest.raises(InvalidArgument) as on_create:
        tasks.create(CREATOR, NewTask(title="t", assigned_to=UNVERIFIED))
    task = tasks.create(CREATOR, NewTask(title="t"))
    with pytest.raises(InvalidArgument) as on_update:
        tasks.update(CREATOR, task.id, {"assigned_to": 99})
    assert list(on_create.value.fields) == list(on_update.value.fields) == ["assigned_to"]


def test_the_directory_is_asked_only_for_a_new_assignee(tasks: Tasks, directory: FakeDirectory) -> None:
    task = tasks.create(CREATOR, NewTask(title="t", assigned_to=VERIFIED))
    tasks.update(CREATOR, task.id, {"assigned_to": VERIFIED, "title": "same assignee"})
    tasks.assign(CREATOR, task.id, None)
    assert directory.asked == [VERIFIED]
    assert tasks.get(CREATOR, task.id).assigned_to is None


def test_directory_down_refuses_the_assignment_and_changes_nothing(
    tasks: Tasks, directory: FakeDirectory
) -> None:
    task = tasks.create(CREATOR, NewTask(title="t"))
    directory.down = True
    with pytest.raises(Unavailable):
        tasks.update(CREATOR, task.id, {"assigned_to": VERIFIED, "title": "changed"})
    unchanged = tasks.get(CREATOR, task.id)
    assert (unchanged.title, unchanged.assigned_to, unchanged.version) == ("t", None, 1)
