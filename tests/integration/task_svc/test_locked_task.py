"""A change that waited for its task's lock tells the watchers the winner added: its
read's subqueries saw the snapshot taken before the wait (task_svc.locked_task), so it
reads again, in the same transaction (one round trip more, no new attempt)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from task_svc import events
from task_svc.permissions import Viewer
from task_svc.tasks import NewTask
from taskmgr.events.v1 import events_pb2
from tests.integration.task_svc.support import counted_tasks, outbox_events

pytestmark = pytest.mark.postgres
ALICE = Viewer(user_id=1, is_staff=False)


@pytest.fixture
def counted(pg_url):
    with counted_tasks(pg_url, pool_size=3) as tasks_and_counter:
        yield tasks_and_counter


def test_a_change_that_waited_for_an_assignment_tells_the_new_assignee(counted):
    tasks, counter = counted
    task = tasks.create(ALICE, NewTask(title="t"))
    with tasks._db.engine.connect() as winner:
        # An assignment in flight: the task changed and its assignee watching, uncommitted.
        winner.execute(
            text("UPDATE tasks SET assigned_to = 2, version = version + 1 WHERE id = :id"), {"id": task.id}
        )
        winner.execute(
            text(
                "INSERT INTO task_watchers (task_id, user_id, staff, created_at)"
                " VALUES (:id, 2, false, now())"
            ),
            {"id": task.id},
        )
        changed = []
        update = lambda: changed.append(tasks.update(ALICE, task.id, {"title": "u"}))  # noqa: E731
        waiting = threading.Thread(target=update)
        before = counter.count
        waiting.start()
        time.sleep(0.5)  # the update is waiting for the task's lock
        assert not changed
        winner.commit()
    waiting.join(10)
    # The read with BEGIN, the read again, the writes with the COMMIT (and the winner's COMMIT).
    assert counter.count - before == 3 + 1
    assert (changed[0].title, changed[0].assigned_to, changed[0].version) == ("u", 2, 3)
    told = []
    for event in outbox_events(tasks._db):
        if event.type == events.UPDATED:
            payload = events_pb2.TaskUpdated()
            assert event.data.Unpack(payload)
            told.append(list(payload.people.recipients.user_ids))
    assert told == [[2]]
