"""Comments, activity and watchers over real gRPC on PostgreSQL and SQLite: who may read,
add, edit and delete comments; the activity each change writes (and only when it
commits); who watches and who each event tells (TaskPeople.recipients)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from task_svc import activity as activity_log
from task_svc.models import Activity, Comment, Outbox, Task
from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import collaboration_service_pb2 as cpb
from taskmgr.task.v1 import collaboration_service_pb2_grpc, project_service_pb2_grpc
from taskmgr.task.v1 import project_service_pb2 as ppb
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import (
    ALICE,
    BOB,
    CAROL,
    STAFF,
    field_violations,
    grpc_error,
    outbox_events,
    reason,
)

OWNER, MEMBER, VIEWER = ppb.PROJECT_ROLE_OWNER, ppb.PROJECT_ROLE_MEMBER, ppb.PROJECT_ROLE_VIEWER
K = cpb.ActivityKind
DAVE = 6  # the fake user_svc knows nobody called user6


@pytest.fixture
def talk(server) -> Iterator[collaboration_service_pb2_grpc.CollaborationServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield collaboration_service_pb2_grpc.CollaborationServiceStub(channel)


@pytest.fixture
def projects(server) -> Iterator[project_service_pb2_grpc.ProjectServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield project_service_pb2_grpc.ProjectServiceStub(channel)


@pytest.fixture
def team(projects, as_user) -> ppb.Project:
    """Alice's project: Bob a member, Carol a viewer."""
    project = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="Team")), metadata=as_user(ALICE)
    )
    for user_id, role in ((BOB, MEMBER), (CAROL, VIEWER)):
        projects.AddMember(
            ppb.AddMemberRequest(project_id=project.id, user_id=user_id, role=role), metadata=as_user(ALICE)
        )
    return project


def new_task(stub, as_user, user_id: int = ALICE, **fields) -> pb.Task:  # noqa: ANN001
    return stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="t", **fields)), metadata=as_user(user_id))


def change(stub, as_user, user_id: int, task_id: int, **fields) -> pb.Task:  # noqa: ANN001
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=task_id, **fields), update_mask=field_mask_pb2.FieldMask(paths=list(fields))
    )
    return stub.UpdateTask(request, metadata=as_user(user_id))


def comment(talk, as_user, user_id: int, task_id: int, text: str) -> cpb.Comment:  # noqa: ANN001
    return talk.AddComment(cpb.AddCommentRequest(task_id=task_id, text=text), metadata=as_user(user_id))


def last_event(database, event_type: str, payload_type):  # noqa: ANN001, ANN201
    found = [e for e in outbox_events(database) if e.type == event_type]
    payload = payload_type()
    assert found[-1].data.Unpack(payload)
    return payload


def told(database, event_type: str, payload_type) -> list[int]:  # noqa: ANN001
    people = last_event(database, event_type, payload_type).people
    assert people.HasField("recipients")
    return list(people.recipients.user_ids)


# --- comments ------------------------------------------------------------------------------


def test_anyone_who_sees_the_task_reads_and_adds_comments_oldest_first(stub, talk, as_user, team):
    task = new_task(stub, as_user, project_id=team.id)
    texts = [f"note {n}" for n in range(5)]
    for n, text in enumerate(texts):
        comment(talk, as_user, (ALICE, BOB, CAROL)[n % 3], task.id, text)  # the viewer too

    seen, token = [], ""
    while True:
        page = talk.ListComments(
            cpb.ListCommentsRequest(task_id=task.id, page_size=2, page_token=token), metadata=as_user(CAROL)
        )
        seen += page.results
        token = page.next_page_token
        if not token:
            break
    assert [c.text for c in seen] == texts
    assert [c.author for c in seen] == [ALICE, BOB, CAROL, ALICE, BOB]
    assert seen[0].created_at == seen[0].updated_at

    # Someone who cannot see the task: NOT_FOUND, as for a task that does not exist.
    for call, request in (
        (talk.ListComments, cpb.ListCommentsRequest(task_id=task.id)),
        (talk.AddComment, cpb.AddCommentRequest(task_id=task.id, text="hi")),
        (talk.ListActivity, cpb.ListActivityRequest(task_id=task.id)),
        (talk.WatchTask, cpb.WatchTaskRequest(task_id=task.id)),
    ):
        assert grpc_error(call, request, metadata=as_user(DAVE)).code() == grpc.StatusCode.NOT_FOUND
    # A token of another task's comments is refused.
    other = new_task(stub, as_user)
    page = talk.ListComments(cpb.ListCommentsRequest(task_id=task.id, page_size=1), metadata=as_user(ALICE))
    error = grpc_error(
        talk.ListComments,
        cpb.ListCommentsRequest(task_id=other.id, page_token=page.next_page_token),
        metadata=as_user(ALICE),
    )
    assert reason(error) == "INVALID_PAGE_TOKEN"


def test_authors_edit_their_own_owners_and_staff_delete_any(stub, talk, as_user, team):
    task = new_task(stub, as_user, project_id=team.id)
    bobs = comment(talk, as_user, BOB, task.id, "first draft")
    carols = comment(talk, as_user, CAROL, task.id, "a viewer's word")

    edited = talk.UpdateComment(
        cpb.UpdateCommentRequest(task_id=task.id, id=bobs.id, text="second draft"), metadata=as_user(BOB)
    )
    assert (edited.text, edited.created_at) == ("second draft", bobs.created_at)
    assert edited.updated_at.ToDatetime() >= bobs.updated_at.ToDatetime()
    for user_id in (ALICE, STAFF, CAROL):  # not even the project's owner edits someone else's words
        error = grpc_error(
            talk.UpdateComment,
            cpb.UpdateCommentRequest(task_id=task.id, id=bobs.id, text="x"),
            metadata=as_user(user_id),
        )
        assert (error.code(), reason(error)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_COMMENT_AUTHOR")

    # A viewer and a member may delete only their own; the owner and staff any.
    error = grpc_error(
        talk.DeleteComment, cpb.DeleteCommentRequest(task_id=task.id, id=bobs.id), metadata=as_user(CAROL)
    )
    assert reason(error) == "NOT_COMMENT_AUTHOR"
    error = grpc_error(
        talk.DeleteComment, cpb.DeleteCommentRequest(task_id=task.id, id=carols.id), metadata=as_user(BOB)
    )
    assert reason(error) == "NOT_COMMENT_AUTHOR"
    talk.DeleteComment(cpb.DeleteCommentRequest(task_id=task.id, id=carols.id), metadata=as_user(ALICE))
    talk.DeleteComment(cpb.DeleteCommentRequest(task_id=task.id, id=bobs.id), metadata=as_user(STAFF))
    assert (
        list(talk.ListComments(cpb.ListCommentsRequest(task_id=task.id), metadata=as_user(BOB)).results) == []
    )

    # Gone, or of another task: NOT_FOUND.
    mine = comment(talk, as_user, BOB, task.id, "again")
    other = new_task(stub, as_user, project_id=team.id)
    for task_id, comment_id in ((task.id, bobs.id), (other.id, mine.id)):
        error = grpc_error(
            talk.DeleteComment,
            cpb.DeleteCommentRequest(task_id=task_id, id=comment_id),
            metadata=as_user(BOB),
        )
        assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "COMMENT_NOT_FOUND")


def test_personal_task_comments_its_creator_deletes_only_their_own(stub, talk, as_user):
    task = new_task(stub, as_user, assigned_to=BOB)
    bobs = comment(talk, as_user, BOB, task.id, "assignee here")
    error = grpc_error(
        talk.DeleteComment, cpb.DeleteCommentRequest(task_id=task.id, id=bobs.id), metadata=as_user(ALICE)
    )
    assert reason(error) == "NOT_COMMENT_AUTHOR"  # no project, so no owner but the author


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "required"), ("   \n ", "blank"), ("x" * 10_001, "10000"), ("bell \x07", "control")],
)
def test_comment_text_is_checked(stub, talk, as_user, text, problem):
    task = new_task(stub, as_user)
    error = grpc_error(
        talk.AddComment, cpb.AddCommentRequest(task_id=task.id, text=text), metadata=as_user(ALICE)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "text" in field_violations(error)
    ok = comment(talk, as_user, ALICE, task.id, "y" * 10_000)
    error = grpc_error(
        talk.UpdateComment,
        cpb.UpdateCommentRequest(task_id=task.id, id=ok.id, text=text),
        metadata=as_user(ALICE),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_changes_under_a_task_answer_if_match_against_its_version(stub, talk, as_user):
    task = new_task(stub, as_user)
    stale = VersionMatch(versions=[task.version + 7])
    error = grpc_error(
        talk.AddComment,
        cpb.AddCommentRequest(task_id=task.id, text="hi", if_match=stale),
        metadata=as_user(ALICE),
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    fresh = VersionMatch(versions=[task.version])
    comment_ = talk.AddComment(
        cpb.AddCommentRequest(task_id=task.id, text="hi", if_match=fresh), metadata=as_user(ALICE)
    )
    assert comment_.text == "hi"
    again = stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(ALICE))
    assert again.version == task.version  # a comment is not a change of the task


# --- activity --------------------------------------------------------------------------------


def activity(talk, as_user, task_id: int, user_id: int = ALICE) -> list[tuple]:  # noqa: ANN001
    entries, token = [], ""
    while True:
        page = talk.ListActivity(
            cpb.ListActivityRequest(task_id=task_id, page_size=3, page_token=token), metadata=as_user(user_id)
        )
        entries += page.results
        token = page.next_page_token
        if not token:
            return [
                (
                    e.actor,
                    e.kind,
                    e.field if e.HasField("field") else None,
                    e.old_value if e.HasField("old_value") else None,
                    e.new_value if e.HasField("new_value") else None,
                )
                for e in entries
            ]


def test_every_change_is_in_the_activity_with_old_and_new_values(stub, talk, projects, as_user, team):
    task = new_task(stub, as_user, project_id=team.id, assigned_to=BOB)
    due = Timestamp(seconds=1896091200)
    change(stub, as_user, BOB, task.id, title="renamed", status=pb.TASK_STATUS_IN_PROGRESS, due_date=due)
    change(stub, as_user, ALICE, task.id, priority=pb.TASK_PRIORITY_URGENT, description="more")
    stub.AssignTask(pb.AssignTaskRequest(id=task.id), metadata=as_user(ALICE))
    note = comment(talk, as_user, CAROL, task.id, "looks fine")
    talk.DeleteComment(cpb.DeleteCommentRequest(task_id=task.id, id=note.id), metadata=as_user(CAROL))
    change(stub, as_user, ALICE, task.id, project_id=None)  # personal again: moved out
    other = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="Other")), metadata=as_user(ALICE)
    )
    change(stub, as_user, ALICE, task.id, project_id=other.id)

    p = str(team.id)
    assert activity(talk, as_user, task.id) == [
        (ALICE, K.ACTIVITY_KIND_CREATED, None, None, None),
        (ALICE, K.ACTIVITY_KIND_ASSIGNED, "assigned_to", None, str(BOB)),
        (BOB, K.ACTIVITY_KIND_FIELD_CHANGED, "title", "t", "renamed"),
        (BOB, K.ACTIVITY_KIND_FIELD_CHANGED, "status", "pending", "in_progress"),
        (BOB, K.ACTIVITY_KIND_FIELD_CHANGED, "due_date", None, "2030-01-31T12:00:00Z"),
        (ALICE, K.ACTIVITY_KIND_FIELD_CHANGED, "description", "", "more"),  # the fields' order
        (ALICE, K.ACTIVITY_KIND_FIELD_CHANGED, "priority", "medium", "urgent"),
        (ALICE, K.ACTIVITY_KIND_UNASSIGNED, "assigned_to", str(BOB), None),
        (CAROL, K.ACTIVITY_KIND_COMMENT_ADDED, None, None, None),
        (CAROL, K.ACTIVITY_KIND_COMMENT_DELETED, None, None, None),
        (ALICE, K.ACTIVITY_KIND_MOVED, "project_id", p, None),
        (ALICE, K.ACTIVITY_KIND_MOVED, "project_id", None, str(other.id)),
    ]
    entries = talk.ListActivity(
        cpb.ListActivityRequest(task_id=task.id, page_size=100), metadata=as_user(ALICE)
    ).results
    assert [e.comment_id for e in entries if e.HasField("comment_id")] == [note.id, note.id]
    times = [e.created_at.ToDatetime() for e in entries]
    assert times == sorted(times)


def test_a_removed_member_unassigned_is_in_the_activity_and_told(
    stub, talk, projects, as_user, team, database
):
    task = new_task(stub, as_user, project_id=team.id, assigned_to=BOB)
    projects.RemoveMember(ppb.RemoveMemberRequest(project_id=team.id, user_id=BOB), metadata=as_user(ALICE))
    assert activity(talk, as_user, task.id)[-1] == (
        ALICE,
        K.ACTIVITY_KIND_UNASSIGNED,
        "assigned_to",
        str(BOB),
        None,
    )
    # Bob is told he was unassigned, though he can no longer see the task; Alice acted.
    assert told(database, "taskmgr.task.assigned", events_pb2.TaskAssigned) == [BOB]
    # From now on he is told nothing about it: he watches it still, but cannot see it.
    change(stub, as_user, ALICE, task.id, title="after Bob left")
    assert told(database, "taskmgr.task.updated", events_pb2.TaskUpdated) == []


class _FailAfterActivityInsert:
    """Fails right after an activity row was written in the change's transaction (which
    then rolls back): a crash between the activity and the commit."""

    def __init__(self, write) -> None:  # noqa: ANN001 (task_svc.activity's execute_unread)
        self.write = write
        self.armed = False
        self.fired = 0

    def __call__(self, session, statement, params) -> None:  # noqa: ANN001
        self.write(session, statement, params)
        if self.armed:
            self.fired += 1
            raise RuntimeError("forced failure after the activity insert")


@pytest.fixture
def fail_after_activity(monkeypatch) -> Iterator[_FailAfterActivityInsert]:  # noqa: ANN001
    hook = _FailAfterActivityInsert(activity_log.execute_unread)
    monkeypatch.setattr(activity_log, "execute_unread", hook)
    yield hook


def _counts(database, task_id: int) -> tuple[int, int, int, str]:  # noqa: ANN001
    with database.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Activity).where(Activity.task_id == task_id)),
            session.scalar(select(func.count()).select_from(Comment).where(Comment.task_id == task_id)),
            session.scalar(select(func.count()).select_from(Outbox)),
            session.get(Task, task_id).title,
        )


def test_activity_is_written_exactly_when_the_change_commits(
    stub, talk, as_user, database, fail_after_activity
):
    task = new_task(stub, as_user, assigned_to=BOB)
    before = _counts(database, task.id)

    fail_after_activity.armed = True
    for call in (
        lambda: change(stub, as_user, ALICE, task.id, title="never"),
        lambda: stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=CAROL), metadata=as_user(ALICE)),
        lambda: comment(talk, as_user, BOB, task.id, "never said"),
    ):
        assert grpc_error(call).code() == grpc.StatusCode.INTERNAL
    assert fail_after_activity.fired == 3
    assert _counts(database, task.id) == before  # no activity, no change, no comment, no event

    fail_after_activity.armed = False
    change(stub, as_user, ALICE, task.id, title="now")
    activity_count, _, events_count, title = _counts(database, task.id)
    assert (activity_count, events_count, title) == (before[0] + 1, before[2] + 1, "now")


# --- watchers --------------------------------------------------------------------------------


def watching(talk, as_user, user_id: int, task_id: int) -> bool:  # noqa: ANN001
    return talk.GetWatchState(cpb.GetWatchStateRequest(task_id=task_id), metadata=as_user(user_id)).watching


def test_creator_and_assignee_watch_anyone_who_sees_it_may_watch_or_unwatch(stub, talk, as_user, team):
    task = new_task(stub, as_user, project_id=team.id, assigned_to=BOB)
    assert [watching(talk, as_user, u, task.id) for u in (ALICE, BOB, CAROL)] == [True, True, False]

    state = talk.WatchTask(cpb.WatchTaskRequest(task_id=task.id), metadata=as_user(CAROL))  # a viewer
    assert (state.task_id, state.watching) == (task.id, True)
    talk.WatchTask(cpb.WatchTaskRequest(task_id=task.id), metadata=as_user(CAROL))  # again: no change
    state = talk.UnwatchTask(cpb.UnwatchTaskRequest(task_id=task.id), metadata=as_user(ALICE))
    assert state.watching is False
    talk.UnwatchTask(cpb.UnwatchTaskRequest(task_id=task.id), metadata=as_user(ALICE))  # again
    assert [watching(talk, as_user, u, task.id) for u in (ALICE, BOB, CAROL)] == [False, True, True]
    error = grpc_error(talk.GetWatchState, cpb.GetWatchStateRequest(task_id=task.id), metadata=as_user(DAVE))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A new assignee starts watching.
    stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=ALICE), metadata=as_user(BOB))
    assert watching(talk, as_user, ALICE, task.id)


def test_every_watcher_but_the_actor_is_told_once_per_change(stub, talk, projects, as_user, team, database):
    task = new_task(stub, as_user, project_id=team.id, assigned_to=BOB)
    talk.WatchTask(cpb.WatchTaskRequest(task_id=task.id), metadata=as_user(CAROL))
    talk.WatchTask(cpb.WatchTaskRequest(task_id=task.id), metadata=as_user(STAFF))  # staff: not a member

    # Three fields in one change: one event, each watcher once, the actor (Bob) never.
    change(stub, as_user, BOB, task.id, title="x", status=pb.TASK_STATUS_DONE, priority=pb.TASK_PRIORITY_LOW)
    assert told(database, "taskmgr.task.updated", events_pb2.TaskUpdated) == [ALICE, CAROL, STAFF]

    # Alice unwatches: no longer told. Carol leaves the project: no longer told.
    talk.UnwatchTask(cpb.UnwatchTaskRequest(task_id=task.id), metadata=as_user(ALICE))
    projects.RemoveMember(ppb.RemoveMemberRequest(project_id=team.id, user_id=CAROL), metadata=as_user(CAROL))
    change(stub, as_user, BOB, task.id, title="y")
    assert told(database, "taskmgr.task.updated", events_pb2.TaskUpdated) == [STAFF]

    # Reassigned and renamed at once: the new and the old assignee are told by the
    # assignment only, the other watchers by the update only; one email each.
    talk.WatchTask(cpb.WatchTaskRequest(task_id=task.id), metadata=as_user(ALICE))
    projects.AddMember(
        ppb.AddMemberRequest(project_id=team.id, user_id=CAROL, role=MEMBER), metadata=as_user(ALICE)
    )
    change(stub, as_user, STAFF, task.id, title="z", assigned_to=CAROL)
    assert told(database, "taskmgr.task.updated", events_pb2.TaskUpdated) == [ALICE]
    assert told(database, "taskmgr.task.assigned", events_pb2.TaskAssigned) == [ALICE, BOB, CAROL]

    # Deleted: the watchers who see it are told, but the actor.
    stub.DeleteTask(pb.DeleteTaskRequest(id=task.id), metadata=as_user(ALICE))
    assert told(database, "taskmgr.task.deleted", events_pb2.TaskDeleted) == [BOB, CAROL, STAFF]


def test_mentions_tell_those_who_can_see_the_task_and_nobody_else(
    stub, talk, projects, as_user, team, database
):
    task = new_task(stub, as_user, project_id=team.id)  # watched by Alice only
    # Bob (user2) is a member; Dave (user6) does not exist; user4 exists but is no member;
    # "bob@example.com" is an address, not a mention; each is told once however often named.
    note = comment(
        talk,
        as_user,
        CAROL,
        task.id,
        "@user2 please look (cc @USER2, @user6, @user4, bob@example.com, @user3).",
    )
    payload = last_event(database, "taskmgr.task.commented", events_pb2.TaskCommented)
    assert (payload.comment_id, payload.task_id) == (note.id, task.id)
    assert list(payload.mentioned) == [BOB]  # Carol mentioned herself: the author is never told
    assert list(payload.people.recipients.user_ids) == [ALICE, BOB]
    assert payload.excerpt == note.text

    # A personal task: only its creator and assignee can see it; mentioning others tells nobody.
    personal = new_task(stub, as_user, assigned_to=BOB)
    comment(talk, as_user, BOB, personal.id, "@user3 @user1 @user5 what do you think?")
    payload = last_event(database, "taskmgr.task.commented", events_pb2.TaskCommented)
    assert list(payload.mentioned) == [ALICE, STAFF]  # staff (user5) see every task
    assert list(payload.people.recipients.user_ids) == [ALICE, STAFF]


def test_a_watcher_who_lost_sight_of_a_personal_task_is_not_told(stub, talk, as_user, database):
    task = new_task(stub, as_user, assigned_to=BOB)
    stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=CAROL), metadata=as_user(ALICE))
    assert told(database, "taskmgr.task.assigned", events_pb2.TaskAssigned) == [CAROL, BOB]  # Bob: unassigned
    comment(talk, as_user, CAROL, task.id, "on it")
    assert told(database, "taskmgr.task.commented", events_pb2.TaskCommented) == [ALICE]  # not Bob


def test_a_task_deleted_between_the_read_and_the_insert_is_not_found(stub, talk, as_user, database, engine):
    """PostgreSQL, READ COMMITTED: the task is deleted by another transaction right before
    the comment's (or the watcher's) INSERT: NOT_FOUND, not an internal error. (On SQLite
    the comment's transaction holds the write lock from its start: no one deletes meanwhile.)"""
    if engine != "postgresql":
        pytest.skip("SQLite serializes writers: the task cannot be deleted meanwhile")
    for table, call in (
        ("COMMENTS", lambda task_id: comment(talk, as_user, ALICE, task_id, "too late")),
        (
            "TASK_WATCHERS",
            lambda task_id: talk.WatchTask(cpb.WatchTaskRequest(task_id=task_id), metadata=as_user(STAFF)),
        ),
    ):
        task = new_task(stub, as_user)

        def delete_first(
            conn, cursor, statement, parameters, context, executemany, task_id=task.id, table=table
        ):  # noqa: ANN001
            if statement.lstrip().upper().startswith(f"INSERT INTO {table}"):
                with database.transaction() as session:
                    session.delete(session.get(Task, task_id))

        event.listen(Engine, "before_cursor_execute", delete_first)
        try:
            error = grpc_error(call, task.id)
        finally:
            event.remove(Engine, "before_cursor_execute", delete_first)
        assert (error.code(), reason(error)) == (grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND")


def test_staff_who_create_a_task_in_a_project_they_are_not_in_are_told_of_it(
    stub, talk, as_user, team, database
):
    task = new_task(stub, as_user, STAFF, project_id=team.id)
    assert watching(talk, as_user, STAFF, task.id)
    change(stub, as_user, ALICE, task.id, title="renamed by the owner")
    assert told(database, "taskmgr.task.updated", events_pb2.TaskUpdated) == [STAFF]


def test_an_edit_tells_only_the_users_it_newly_mentions(stub, talk, as_user, team, database):
    task = new_task(stub, as_user, project_id=team.id)
    note = comment(talk, as_user, BOB, task.id, "@user1 have a look")
    events_before = len(outbox_events(database))

    def edit(text: str) -> None:
        talk.UpdateComment(
            cpb.UpdateCommentRequest(task_id=task.id, id=note.id, text=text), metadata=as_user(BOB)
        )

    edit("@user1 have a look, please")  # nobody new: no event, no email
    assert len(outbox_events(database)) == events_before
    edit("@user1 @user3 @user6 have a look")  # Carol (a viewer) is new; user6 does not exist
    payload = last_event(database, "taskmgr.task.commented", events_pb2.TaskCommented)
    assert (payload.comment_id, list(payload.mentioned)) == (note.id, [CAROL])
    assert list(payload.people.recipients.user_ids) == [CAROL]  # not the watchers again
    assert len(outbox_events(database)) == events_before + 1
    # No activity entry for an edit: the activity has the comment added, once.
    kinds = [
        e.kind
        for e in talk.ListActivity(cpb.ListActivityRequest(task_id=task.id), metadata=as_user(ALICE)).results
    ]
    assert kinds.count(K.ACTIVITY_KIND_COMMENT_ADDED) == 1
