"""PostgreSQL round trips per task operation, counted on the wire: a read is one, a
create with its event, watcher and activity rows two."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import Database, migrate
from common.errors import NotFound
from common.paging import PageTokens
from task_svc import events
from task_svc.labels import Labels
from task_svc.list_query import parse_list_query
from task_svc.listing import POSTGRES_SETTINGS
from task_svc.models import Activity, IdempotencyKey, Project, ProjectMember, Watcher
from task_svc.permissions import Viewer
from task_svc.server import MIGRATIONS
from task_svc.task_labels import parse
from task_svc.tasks import NewTask, Tasks
from taskmgr.events.v1 import events_pb2
from tests.integration.task_svc.support import outbox_events
from tests.support.pg_round_trips import RoundTripCounter

pytestmark = pytest.mark.postgres
ALICE = Viewer(user_id=1, is_staff=False)
NO_FILTERS = dict.fromkeys(("assigned_to", "created_by", "q", "ordering", "status", "priority"), "")


class AnyoneAssignable:
    def check_assignable(self, user_id: int) -> None:
        return None


@pytest.fixture
def counted(pg_url):
    counter = RoundTripCounter(pg_url)
    database = Database(counter.url, pool_size=2, postgres_settings=POSTGRES_SETTINGS)
    migrate(database, MIGRATIONS)
    yield Tasks(database, AnyoneAssignable(), PageTokens(b"k" * 32)), counter
    database.dispose()
    counter.close()


def round_trips(counter: RoundTripCounter, operation):  # noqa: ANN001, ANN201
    before, queries = counter.count, len(counter.queries)
    result = operation()
    return result, counter.count - before, counter.queries[queries:]


def test_a_read_is_one_round_trip_with_no_begin_or_rollback(counted):
    tasks, counter = counted
    created = [tasks.create(ALICE, NewTask(title=f"t{n}")) for n in range(3)]
    query = parse_list_query(ALICE, NO_FILTERS)
    for _ in range(2):  # the second time on pooled connections, as under load
        (page, _token), listed, list_queries = round_trips(counter, lambda: tasks.list(query, "", 2))
        task, got, get_queries = round_trips(counter, lambda: tasks.get(ALICE, created[0].id))
        assert [row.id for row in page] == [created[2].id, created[1].id]
        assert task.title == "t0"
        assert (listed, got) == (1, 1), list_queries + get_queries


def test_a_project_task_is_read_with_the_viewers_role_in_one_round_trip(counted):
    tasks, counter = counted
    with tasks._db.transaction() as session:
        project = Project(name="p", created_by=ALICE.user_id)
        session.add(project)
        session.flush()
        session.add_all(
            [
                ProjectMember(project_id=project.id, user_id=user, role=role)
                for user, role in ((1, "owner"), (3, "viewer"))
            ]
        )
    task = tasks.create(ALICE, NewTask(title="shared", project_id=project.id))
    for viewer in (ALICE, Viewer(user_id=3, is_staff=False)):  # its owner, and a viewer of the project
        read, trips, queries = round_trips(counter, lambda viewer=viewer: tasks.get(viewer, task.id))
        assert (read.title, trips) == ("shared", 1), queries
    stranger = Viewer(user_id=2, is_staff=False)
    before = counter.count
    with pytest.raises(NotFound):
        tasks.get(stranger, task.id)
    assert counter.count - before == 1


def _written(tasks: Tasks, task_id: int) -> tuple[list, list, list]:
    """The task's watchers (user, staff), activity kinds and events (type, recipients)."""
    with tasks._db.read() as session:
        watching = session.execute(
            select(Watcher.user_id, Watcher.staff).where(Watcher.task_id == task_id).order_by(Watcher.user_id)
        ).all()
        kinds = list(
            session.scalars(select(Activity.kind).where(Activity.task_id == task_id).order_by(Activity.id))
        )
    told = []
    for event in outbox_events(tasks._db):
        if event.subject == str(task_id):
            payload = _PAYLOADS[event.type]()
            assert event.data.Unpack(payload)
            told.append((event.type, list(payload.people.recipients.user_ids)))
    return [tuple(row) for row in watching], kinds, told


_PAYLOADS = {events.CREATED: events_pb2.TaskCreated, events.ASSIGNED: events_pb2.TaskAssigned}


def test_a_create_with_its_event_watcher_and_activity_is_two_round_trips(counted):
    tasks, counter = counted
    tasks.create(ALICE, NewTask(title="warm-up"))  # the pool's connection opened
    for assignee in (None, 2, ALICE.user_id):
        task, trips, queries = round_trips(
            counter, lambda assignee=assignee: tasks.create(ALICE, NewTask(title="new", assigned_to=assignee))
        )
        assert trips == 2, queries  # the task's INSERT with BEGIN; every other row with COMMIT
        watching, kinds, told = _written(tasks, task.id)
        if assignee is None:
            assert (watching, kinds, told) == ([(1, False)], ["created"], [(events.CREATED, [])])
        elif assignee == 2:
            assert watching == [(1, False), (2, False)]
            assert kinds == ["created", "assigned"]
            assert told == [(events.CREATED, []), (events.ASSIGNED, [2])]  # the assignee, not the creator
        else:  # assigned to themselves: nobody to tell
            assert (watching, told) == ([(1, False)], [(events.CREATED, []), (events.ASSIGNED, [])])
        assert (task.version, task.assigned_to) == (1, assignee)
        assert tasks.get(ALICE, task.id).version == 1


def test_a_create_with_a_request_id_adds_only_its_replay_check(counted):
    tasks, counter = counted
    tasks.create(ALICE, NewTask(title="warm-up"))
    create = lambda: tasks.create(ALICE, NewTask(title="keyed"), "key-1")  # noqa: E731
    task, trips, queries = round_trips(counter, create)
    assert trips == 3, queries  # the replay's read, then the create's two
    replayed, trips, queries = round_trips(counter, create)
    assert (replayed.id, trips) == (task.id, 1), queries
    with tasks._db.read() as session:
        kept = session.scalar(select(IdempotencyKey.task_id).where(IdempotencyKey.request_id == "key-1"))
    assert kept == task.id


def test_a_project_task_s_create_adds_one_round_trip_per_check_and_its_labels_need_no_read(counted):
    tasks, counter = counted
    with tasks._db.transaction() as session:
        project = Project(name="p", created_by=ALICE.user_id)
        session.add(project)
        session.flush()
        session.add_all([ProjectMember(project_id=project.id, user_id=u, role="owner") for u in (1, 2)])
    bug, ui = (Labels(tasks._db, tasks._page_tokens).create(ALICE, project.id, n, "#000000").id for n in "ab")
    create = lambda new: tasks.create(ALICE, new)  # noqa: E731
    plain, trips, queries = round_trips(counter, lambda: create(NewTask(title="p", project_id=project.id)))
    assert trips == 3, queries  # the project with the creator's role (and BEGIN), the task, the COMMIT
    new = NewTask(title="full", project_id=project.id, assigned_to=2, label_ids=(ui, bug))
    task, trips, queries = round_trips(counter, lambda: create(new))
    assert trips == 5, queries  # and the assignee's membership, the labels' project
    labels, trips, _ = round_trips(counter, lambda: tasks.labels_of(task))
    assert (labels, trips) == (sorted([bug, ui]), 0)
    assert tasks.labels_of(plain) == []
    assert parse(tasks.get(ALICE, task.id).label_ids) == sorted([bug, ui])
    watching, kinds, told = _written(tasks, task.id)
    assert (watching, kinds) == ([(1, False), (2, False)], ["created", "assigned"])
    assert told == [(events.CREATED, []), (events.ASSIGNED, [2])]
