"""PostgreSQL round trips per task operation, counted on the wire: a read is one, a
create with its event, watcher and activity rows two."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.errors import NotFound
from task_svc import events
from task_svc.labels import Labels
from task_svc.list_query import parse_list_query
from task_svc.models import Activity, IdempotencyKey, Project, ProjectMember, Watcher
from task_svc.permissions import Viewer
from task_svc.task_labels import parse
from task_svc.tasks import NewTask, Tasks
from taskmgr.events.v1 import events_pb2
from tests.integration.task_svc.support import counted_tasks, outbox_events
from tests.support.pg_round_trips import RoundTripCounter

pytestmark = pytest.mark.postgres
ALICE = Viewer(user_id=1, is_staff=False)
NO_FILTERS = dict.fromkeys(("assigned_to", "created_by", "q", "ordering", "status", "priority"), "")


@pytest.fixture
def counted(pg_url):
    with counted_tasks(pg_url, pool_size=2) as tasks_and_counter:
        yield tasks_and_counter


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



def _shared_project(tasks: Tasks) -> int:
    with tasks._db.transaction() as session:
        project = Project(name="p", created_by=ALICE.user_id)
        session.add(project)
        session.flush()
        session.add_all([ProjectMember(project_id=project.id, user_id=u, role="owner") for u in (1, 2)])
    return project.id


def _told(tasks: Tasks, event_type: str, task_id: int) -> list[list[int]]:
    """The recipients of each `event_type` event of the task, oldest first."""
    told = []
    for event in outbox_events(tasks._db):
        if event.type == event_type and event.subject == str(task_id):
            payload = _EVENTS[event_type]()
            assert event.data.Unpack(payload)
            told.append(list(payload.people.recipients.user_ids))
    return told


_EVENTS = {
    events.UPDATED: events_pb2.TaskUpdated, events.ASSIGNED: events_pb2.TaskAssigned,
    events.DELETED: events_pb2.TaskDeleted, events.COMMENTED: events_pb2.TaskCommented,
}


@pytest.mark.parametrize("shared", [False, True], ids=["personal", "project"])
def test_a_change_with_its_event_and_activity_is_two_round_trips(counted, shared):
    """An update of a field (7 round trips before, 9 in a project), an unassignment and
    an assignment to someone already checked: the task locked with its watchers (and
    BEGIN), then the UPDATE, activity, watcher and outbox rows with the COMMIT."""
    tasks, counter = counted
    project_id = _shared_project(tasks) if shared else None
    task = tasks.create(ALICE, NewTask(title="t", project_id=project_id, assigned_to=2))
    changed, trips, queries = round_trips(counter, lambda: tasks.update(ALICE, task.id, {"title": "u"}))
    assert trips == 2, queries
    assert (changed.title, changed.version, tasks.get(ALICE, task.id).version) == ("u", 2, 2)
    assert tasks.labels_of(changed) == []  # known, not read
    unassigned, trips, queries = round_trips(counter, lambda: tasks.assign(ALICE, task.id, None))
    assert (trips, unassigned.assigned_to, unassigned.version) == (2, None, 3), queries
    with tasks._db.read() as session:
        kinds = list(
            session.scalars(select(Activity.kind).where(Activity.task_id == task.id).order_by(Activity.id))
        )
    assert kinds == ["created", "assigned", "field_changed", "unassigned"]
    # The assignee (a watcher) is told of the title; the unassigned one of the unassignment.
    assert _told(tasks, events.UPDATED, task.id) == [[2]]
    assert _told(tasks, events.ASSIGNED, task.id)[1:] == [[2]]


def test_an_assignment_to_someone_new_asks_user_svc_between_two_passes(counted):
    """A personal task's new assignee is checked with user_svc outside the transaction
    (on SQLite it holds the one write lock), and only once the caller is known to be
    allowed: the first pass finds the check needed and ends (2 round trips), the second
    writes (2). 11 before. A project task's assignee is a member, checked in the one
    transaction: 3 (its membership row read and held, FOR SHARE)."""
    tasks, counter = counted
    task = tasks.create(ALICE, NewTask(title="t"))
    assigned, trips, queries = round_trips(counter, lambda: tasks.assign(ALICE, task.id, 2))
    assert (trips, assigned.assigned_to) == (4, 2), queries
    project_task = tasks.create(ALICE, NewTask(title="t", project_id=_shared_project(tasks)))
    assigned, trips, queries = round_trips(counter, lambda: tasks.assign(ALICE, project_task.id, 2))
    assert (trips, assigned.assigned_to) == (3, 2), queries
    assert _told(tasks, events.ASSIGNED, task.id) == [[2]]
    assert _told(tasks, events.ASSIGNED, project_task.id) == [[2]]


@pytest.mark.parametrize("shared", [False, True], ids=["personal", "project"])
def test_a_delete_with_its_event_is_two_round_trips(counted, shared):
    """8 round trips before (9 in a project): the task locked with its watchers (and
    BEGIN), then the DELETE and the outbox row with the COMMIT."""
    tasks, counter = counted
    project_id = _shared_project(tasks) if shared else None
    task = tasks.create(ALICE, NewTask(title="t", project_id=project_id, assigned_to=2))
    _, trips, queries = round_trips(counter, lambda: tasks.delete(ALICE, task.id))
    assert trips == 2, queries
    with pytest.raises(NotFound):
        tasks.get(ALICE, task.id)
    assert _told(tasks, events.DELETED, task.id) == [[2]]


class Directory:
    """user_svc's answers: every user may be assigned; `userN` is user N, not staff."""

    def check_assignable(self, user_id: int) -> None:
        return None

    def find(self, name: str) -> tuple[int, bool] | None:
        return (int(name.removeprefix("user")), False) if name.startswith("user") else None


@pytest.mark.parametrize("shared", [False, True], ids=["personal", "project"])
def test_a_comment_with_its_activity_and_event_is_two_round_trips(counted, shared):
    """8 round trips before (11 in a project): the task with its watchers, and the
    comment's id from its sequence, with BEGIN; the comment, activity and outbox rows
    with the COMMIT. A mention adds the read before user_svc is asked, and in a project
    the roles of the mentioned who do not watch."""
    from task_svc.collaboration import Collaboration

    tasks, counter = counted
    project_id = _shared_project(tasks) if shared else None
    task = tasks.create(ALICE, NewTask(title="t", project_id=project_id, assigned_to=2))
    collaboration = Collaboration(tasks._db, Directory(), tasks._page_tokens)
    comment, trips, queries = round_trips(counter, lambda: collaboration.add_comment(ALICE, task.id, "hi"))
    assert (trips, comment.text, comment.task_id) == (2, "hi", task.id), queries
    mention = lambda: collaboration.add_comment(ALICE, task.id, "@user3 and @user2, look")  # noqa: E731
    second, trips, queries = round_trips(counter, mention)
    assert trips == (4 if shared else 3), queries
    listed, _ = collaboration.comments(ALICE, task.id, "", 10)
    assert [(c.id, c.text) for c in listed] == [(comment.id, "hi"), (second.id, second.text)]
    with tasks._db.read() as session:
        query = select(Activity.kind, Activity.comment_id).where(Activity.task_id == task.id)
        entries = session.execute(query.order_by(Activity.id)).all()
    assert [tuple(e) for e in entries][-2:] == [("comment_added", comment.id), ("comment_added", second.id)]
    # The assignee watches; user 3 is mentioned but cannot see the task (no member of its project).
    assert _told(tasks, events.COMMENTED, task.id) == [[2], [2]]


def test_a_project_s_change_is_two_round_trips(counted):
    """4 before (BEGIN, the project with the caller's role, its UPDATE, COMMIT): the
    project locked with the role and BEGIN, its UPDATE with the COMMIT."""
    from task_svc.projects import Projects

    tasks, counter = counted
    projects = Projects(tasks._db, tasks._page_tokens)
    project = projects.create(ALICE, "q", "").project
    renamed, trips, queries = round_trips(counter, lambda: projects.update(ALICE, project.id, {"name": "r"}))
    assert (trips, renamed.project.name, renamed.project.version) == (2, "r", 2), queries
    archived, trips, queries = round_trips(counter, lambda: projects.set_archived(ALICE, project.id, True))
    assert (trips, archived.project.archived, archived.project.version) == (2, True, 3), queries
    read = projects.get(ALICE, project.id).project
    assert (read.name, read.archived, read.version) == ("r", True, 3)
    assert read.updated_at == archived.project.updated_at
