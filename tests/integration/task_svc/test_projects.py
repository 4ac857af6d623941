"""Projects over real gRPC on PostgreSQL and SQLite: members and roles take effect at
once, the last owner stays, project tasks are seen by members only, assignees are
members, moves between projects, the list's project filter, and the events."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.events.v1 import events_pb2
from taskmgr.task.v1 import project_service_pb2 as ppb
from taskmgr.task.v1 import project_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import (
    ALICE,
    BOB,
    CAROL,
    STAFF,
    UNVERIFIED,
    field_violations,
    grpc_error,
    outbox_events,
    reason,
)

OWNER, MEMBER, VIEWER = ppb.PROJECT_ROLE_OWNER, ppb.PROJECT_ROLE_MEMBER, ppb.PROJECT_ROLE_VIEWER


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


def new_task(stub, user_id: int, as_user, **fields) -> pb.Task:  # noqa: ANN001
    return stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="t", **fields)), metadata=as_user(user_id))


def change(stub, user_id: int, as_user, task_id: int, **fields) -> pb.Task:  # noqa: ANN001
    request = pb.UpdateTaskRequest(
        task=pb.Task(id=task_id, **fields), update_mask=field_mask_pb2.FieldMask(paths=list(fields))
    )
    return stub.UpdateTask(request, metadata=as_user(user_id))


def listed(stub, user_id: int, as_user, **filters) -> list[int]:  # noqa: ANN001
    ids, token = [], ""
    while True:
        page = stub.ListTasks(
            pb.ListTasksRequest(page_size=2, page_token=token, **filters), metadata=as_user(user_id)
        )
        ids += [task.id for task in page.results]
        token = page.next_page_token
        if not token:
            return ids


def failure(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:  # noqa: ANN001
    error = grpc_error(call, *args, **kwargs)
    return error.code(), reason(error)


def test_the_creator_is_the_first_owner_and_others_see_nothing(projects, as_user) -> None:
    project = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="Launch", description="d")), metadata=as_user(ALICE)
    )
    assert (project.name, project.created_by, project.my_role, project.archived) == (
        "Launch",
        ALICE,
        OWNER,
        False,
    )
    members = projects.ListMembers(ppb.ListMembersRequest(project_id=project.id), metadata=as_user(ALICE))
    assert [(m.user_id, m.role) for m in members.results] == [(ALICE, OWNER)]
    assert failure(projects.GetProject, ppb.GetProjectRequest(id=project.id), metadata=as_user(BOB)) == (
        grpc.StatusCode.NOT_FOUND,
        "PROJECT_NOT_FOUND",
    )
    assert failure(projects.GetProject, ppb.GetProjectRequest(id=10**12), metadata=as_user(BOB)) == (
        grpc.StatusCode.NOT_FOUND,
        "PROJECT_NOT_FOUND",
    )
    staff_view = projects.GetProject(ppb.GetProjectRequest(id=project.id), metadata=as_user(STAFF))
    assert staff_view.my_role == ppb.PROJECT_ROLE_UNSPECIFIED


def test_a_name_is_checked(projects, as_user) -> None:
    for name in ("", "   ", "x" * 101, "a\x00b"):
        error = grpc_error(
            projects.CreateProject,
            ppb.CreateProjectRequest(project=ppb.Project(name=name)),
            metadata=as_user(ALICE),
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert any("name" in field for field in field_violations(error)), name


def test_membership_changes_take_effect_at_once(projects, stub, as_user, team) -> None:
    task = new_task(stub, ALICE, as_user, project_id=team.id)
    for user_id in (BOB, CAROL, STAFF):
        assert stub.GetTask(pb.GetTaskRequest(id=task.id), metadata=as_user(user_id)).id == task.id
    # A viewer reads but may not write; made a member, they may at once.
    assert failure(change, stub, CAROL, as_user, task.id, status=pb.TASK_STATUS_DONE) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_ROLE_FORBIDS",
    )
    assert failure(new_task, stub, CAROL, as_user, project_id=team.id) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_ROLE_FORBIDS",
    )
    projects.UpdateMember(
        ppb.UpdateMemberRequest(project_id=team.id, user_id=CAROL, role=MEMBER), metadata=as_user(ALICE)
    )
    assert change(stub, CAROL, as_user, task.id, status=pb.TASK_STATUS_DONE).status == pb.TASK_STATUS_DONE
    # A member may not manage the project or its members.
    assert failure(
        projects.AddMember, ppb.AddMemberRequest(project_id=team.id, user_id=STAFF), metadata=as_user(BOB)
    ) == (grpc.StatusCode.PERMISSION_DENIED, "PROJECT_ROLE_FORBIDS")
    assert failure(projects.ArchiveProject, ppb.ArchiveProjectRequest(id=team.id), metadata=as_user(BOB)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_ROLE_FORBIDS",
    )


def test_a_removed_member_loses_sight_of_the_projects_tasks_at_once(projects, stub, as_user, team) -> None:
    mine = new_task(stub, BOB, as_user, project_id=team.id, assigned_to=BOB)
    personal = new_task(stub, BOB, as_user)
    assert set(listed(stub, BOB, as_user)) == {mine.id, personal.id}
    projects.RemoveMember(ppb.RemoveMemberRequest(project_id=team.id, user_id=BOB), metadata=as_user(ALICE))
    # Even the task Bob created and was assigned: it is the project's.
    assert listed(stub, BOB, as_user) == [personal.id]
    assert failure(stub.GetTask, pb.GetTaskRequest(id=mine.id), metadata=as_user(BOB)) == (
        grpc.StatusCode.NOT_FOUND,
        "TASK_NOT_FOUND",
    )
    assert failure(projects.GetProject, ppb.GetProjectRequest(id=team.id), metadata=as_user(BOB)) == (
        grpc.StatusCode.NOT_FOUND,
        "PROJECT_NOT_FOUND",
    )
    # The assignee of a project task is a member: his assignment went with him.
    assert not stub.GetTask(pb.GetTaskRequest(id=mine.id), metadata=as_user(ALICE)).HasField("assigned_to")


def test_the_last_owner_can_neither_leave_nor_be_demoted(projects, as_user, team) -> None:
    leave = ppb.RemoveMemberRequest(project_id=team.id, user_id=ALICE)
    demote = ppb.UpdateMemberRequest(project_id=team.id, user_id=ALICE, role=MEMBER)
    for call, request in ((projects.RemoveMember, leave), (projects.UpdateMember, demote)):
        assert failure(call, request, metadata=as_user(ALICE)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "LAST_OWNER",
        )
    # With a second owner, the first may step down, and the second may then not.
    projects.UpdateMember(
        ppb.UpdateMemberRequest(project_id=team.id, user_id=BOB, role=OWNER), metadata=as_user(ALICE)
    )
    projects.UpdateMember(demote, metadata=as_user(ALICE))
    assert failure(
        projects.RemoveMember, ppb.RemoveMemberRequest(project_id=team.id, user_id=BOB), metadata=as_user(BOB)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_OWNER")
    # Any member may leave.
    projects.RemoveMember(ppb.RemoveMemberRequest(project_id=team.id, user_id=CAROL), metadata=as_user(CAROL))
    members = projects.ListMembers(ppb.ListMembersRequest(project_id=team.id), metadata=as_user(BOB))
    assert [(m.user_id, m.role) for m in members.results] == [(ALICE, MEMBER), (BOB, OWNER)]


def test_members_are_added_by_id_or_username_if_they_exist_and_are_verified(projects, as_user, team) -> None:
    added = projects.AddMember(
        ppb.AddMemberRequest(project_id=team.id, username="USER5", role=VIEWER), metadata=as_user(ALICE)
    )
    assert (added.user_id, added.role) == (STAFF, VIEWER)
    for request, field in [
        (ppb.AddMemberRequest(project_id=team.id, user_id=UNVERIFIED), "user_id"),
        (ppb.AddMemberRequest(project_id=team.id, user_id=999), "user_id"),
        (ppb.AddMemberRequest(project_id=team.id, username="nobody"), "username"),
        # Not a username at all: refused at the door, user_svc is not asked.
        (ppb.AddMemberRequest(project_id=team.id, username="bob\x00"), "username"),
        (ppb.AddMemberRequest(project_id=team.id, username="bob smith"), "username"),
        (ppb.AddMemberRequest(project_id=team.id), "user_id"),
        (ppb.AddMemberRequest(project_id=team.id, user_id=BOB, username="user2"), "user_id"),
    ]:
        error = grpc_error(projects.AddMember, request, metadata=as_user(ALICE))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in field_violations(error), request
    assert failure(
        projects.AddMember, ppb.AddMemberRequest(project_id=team.id, user_id=BOB), metadata=as_user(ALICE)
    ) == (grpc.StatusCode.ALREADY_EXISTS, "MEMBER_EXISTS")


def test_adding_a_member_records_an_event_with_the_project(projects, as_user, database, team) -> None:
    added = [event for event in outbox_events(database) if event.type == "taskmgr.project.member_added"]
    payloads = []
    for event in added:
        payload = events_pb2.ProjectMemberAdded()
        assert event.data.Unpack(payload)
        payloads.append(
            (payload.project_id, payload.project_name, payload.user_id, payload.role, payload.actor)
        )
    assert payloads == [(team.id, "Team", BOB, MEMBER, ALICE), (team.id, "Team", CAROL, VIEWER, ALICE)]


def test_task_events_carry_the_project(stub, as_user, database, team) -> None:
    task = new_task(stub, BOB, as_user, project_id=team.id, assigned_to=ALICE)
    personal = new_task(stub, BOB, as_user)
    seen = {}
    for event in outbox_events(database):
        if event.type in ("taskmgr.task.created", "taskmgr.task.assigned"):
            payload = (
                events_pb2.TaskCreated() if event.type.endswith("created") else events_pb2.TaskAssigned()
            )
            event.data.Unpack(payload)
            seen[(event.type, payload.task_id)] = (
                payload.project_id if payload.HasField("project_id") else None
            )
    assert seen == {
        ("taskmgr.task.created", task.id): team.id,
        ("taskmgr.task.assigned", task.id): team.id,
        ("taskmgr.task.created", personal.id): None,
    }


def test_the_assignee_of_a_project_task_must_be_a_member(stub, as_user, team) -> None:
    error = grpc_error(new_task, stub, ALICE, as_user, project_id=team.id, assigned_to=STAFF)
    assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "ASSIGNEE_NOT_MEMBER")
    assert "assigned_to" in field_violations(error)
    task = new_task(stub, ALICE, as_user, project_id=team.id)
    error = grpc_error(
        stub.AssignTask, pb.AssignTaskRequest(id=task.id, user_id=STAFF), metadata=as_user(BOB)
    )
    assert (reason(error), list(field_violations(error))) == ("ASSIGNEE_NOT_MEMBER", ["user_id"])
    # A viewer is a member: they may be given work, though not change it themselves.
    assigned = stub.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=CAROL), metadata=as_user(BOB))
    assert assigned.assigned_to == CAROL


def test_moves_need_edit_rights_on_both_sides_and_a_member_assignee(projects, stub, as_user, team) -> None:
    other = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="Other")), metadata=as_user(BOB)
    )
    personal = new_task(stub, BOB, as_user, assigned_to=CAROL)
    # Carol is no member of Bob's project: the move is refused, the task stays.
    error = grpc_error(change, stub, BOB, as_user, personal.id, project_id=other.id)
    assert reason(error) == "ASSIGNEE_NOT_MEMBER"
    moved = change(stub, BOB, as_user, personal.id, project_id=other.id, assigned_to=BOB)
    assert (moved.project_id, moved.assigned_to) == (other.id, BOB)
    assert failure(stub.GetTask, pb.GetTaskRequest(id=moved.id), metadata=as_user(CAROL)) == (
        grpc.StatusCode.NOT_FOUND,
        "TASK_NOT_FOUND",
    )
    # Into Alice's project: Bob is a member there; out of it again to his own.
    into_team = change(stub, BOB, as_user, moved.id, project_id=team.id)
    assert into_team.project_id == team.id
    assert stub.GetTask(pb.GetTaskRequest(id=moved.id), metadata=as_user(CAROL)).project_id == team.id
    # Carol (a viewer of the team) may not move it anywhere; Alice may not move it into
    # Bob's project, which she cannot see.
    assert failure(change, stub, CAROL, as_user, moved.id, project_id=other.id) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_ROLE_FORBIDS",
    )
    assert failure(change, stub, ALICE, as_user, moved.id, project_id=other.id) == (
        grpc.StatusCode.NOT_FOUND,
        "PROJECT_NOT_FOUND",
    )
    # Back to a personal task (null): Bob created it, so he still sees it.
    back = stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=pb.Task(id=moved.id), update_mask=field_mask_pb2.FieldMask(paths=["project_id"])
        ),
        metadata=as_user(BOB),
    )
    assert not back.HasField("project_id")
    assert (
        failure(stub.GetTask, pb.GetTaskRequest(id=moved.id), metadata=as_user(CAROL))[1] == "TASK_NOT_FOUND"
    )


def test_the_list_filters_by_project_and_leaves_out_archived_projects(projects, stub, as_user, team) -> None:
    in_team = [new_task(stub, ALICE, as_user, project_id=team.id).id for _ in range(3)]
    personal = new_task(stub, BOB, as_user).id
    assigned_personal = new_task(stub, ALICE, as_user, assigned_to=BOB).id
    newest_first = sorted([*in_team, personal, assigned_personal], reverse=True)
    assert listed(stub, BOB, as_user) == newest_first
    assert listed(stub, BOB, as_user, project=str(team.id)) == sorted(in_team, reverse=True)
    assert listed(stub, BOB, as_user, project="none") == sorted([personal, assigned_personal], reverse=True)
    assert listed(stub, STAFF, as_user, project=str(team.id)) == sorted(in_team, reverse=True)
    assert listed(stub, ALICE, as_user, project="none") == [assigned_personal]
    # Someone else's project lists nothing, as one that does not exist.
    assert listed(stub, STAFF + 1, as_user, project=str(team.id)) == []
    # Archived: out of the default lists (staff's too), still readable and listable by id.
    projects.ArchiveProject(ppb.ArchiveProjectRequest(id=team.id), metadata=as_user(ALICE))
    assert listed(stub, BOB, as_user) == sorted([personal, assigned_personal], reverse=True)
    assert set(in_team).isdisjoint(listed(stub, STAFF, as_user))
    assert listed(stub, BOB, as_user, project=str(team.id)) == sorted(in_team, reverse=True)
    assert stub.GetTask(pb.GetTaskRequest(id=in_team[0]), metadata=as_user(CAROL)).id == in_team[0]
    assert failure(new_task, stub, BOB, as_user, project_id=team.id) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PROJECT_ARCHIVED",
    )
    projects.UnarchiveProject(ppb.UnarchiveProjectRequest(id=team.id), metadata=as_user(ALICE))
    assert listed(stub, BOB, as_user) == newest_first


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1 ", "me", "9" * 20])
def test_a_bad_project_filter_is_invalid(stub, as_user, bad: str) -> None:
    error = grpc_error(stub.ListTasks, pb.ListTasksRequest(project=bad), metadata=as_user(ALICE))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any("project" in field for field in field_violations(error))


def test_projects_list_update_and_delete(projects, stub, as_user, team) -> None:
    second = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="B")), metadata=as_user(BOB)
    )
    names = lambda user_id, **kw: [  # noqa: E731
        p.name
        for p in projects.ListProjects(ppb.ListProjectsRequest(**kw), metadata=as_user(user_id)).results
    ]
    assert names(BOB) == ["Team", "B"]
    assert names(ALICE) == ["Team"]
    assert "B" in names(STAFF)
    renamed = projects.UpdateProject(
        ppb.UpdateProjectRequest(
            project=ppb.Project(id=second.id, name="Backlog"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            if_match=VersionMatch(versions=[second.version]),
        ),
        metadata=as_user(BOB),
    )
    assert (renamed.name, renamed.version) == ("Backlog", second.version + 1)
    stale = ppb.UpdateProjectRequest(
        project=ppb.Project(id=second.id, name="Again"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        if_match=VersionMatch(versions=[second.version]),
    )
    assert failure(projects.UpdateProject, stale, metadata=as_user(BOB)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "VERSION_MISMATCH",
    )
    projects.ArchiveProject(ppb.ArchiveProjectRequest(id=second.id), metadata=as_user(BOB))
    assert names(BOB) == ["Team"]
    assert names(BOB, archived=True) == ["Team", "Backlog"]
    # Delete: owners only, and only an empty project.
    new_task(stub, ALICE, as_user, project_id=team.id)
    assert failure(projects.DeleteProject, ppb.DeleteProjectRequest(id=team.id), metadata=as_user(BOB)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_ROLE_FORBIDS",
    )
    assert failure(projects.DeleteProject, ppb.DeleteProjectRequest(id=team.id), metadata=as_user(ALICE)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PROJECT_NOT_EMPTY",
    )
    projects.DeleteProject(ppb.DeleteProjectRequest(id=second.id), metadata=as_user(BOB))
    assert failure(projects.GetProject, ppb.GetProjectRequest(id=second.id), metadata=as_user(BOB))[1] == (
        "PROJECT_NOT_FOUND"
    )


def test_projects_and_members_page(projects, as_user) -> None:
    ids = [
        projects.CreateProject(
            ppb.CreateProjectRequest(project=ppb.Project(name=f"p{n}")), metadata=as_user(ALICE)
        ).id
        for n in range(5)
    ]
    seen, token = [], ""
    while True:
        page = projects.ListProjects(
            ppb.ListProjectsRequest(page_size=2, page_token=token), metadata=as_user(ALICE)
        )
        seen += [p.id for p in page.results]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    for user_id in (BOB, CAROL, STAFF):
        projects.AddMember(ppb.AddMemberRequest(project_id=ids[0], user_id=user_id), metadata=as_user(ALICE))
    first = projects.ListMembers(
        ppb.ListMembersRequest(project_id=ids[0], page_size=3), metadata=as_user(CAROL)
    )
    rest = projects.ListMembers(
        ppb.ListMembersRequest(project_id=ids[0], page_size=3, page_token=first.next_page_token),
        metadata=as_user(CAROL),
    )
    assert [m.user_id for m in [*first.results, *rest.results]] == [ALICE, BOB, CAROL, STAFF]
    assert not rest.next_page_token


def test_membership_changes_are_changes_of_the_project_and_honour_if_match(projects, as_user, team) -> None:
    before = projects.GetProject(ppb.GetProjectRequest(id=team.id), metadata=as_user(ALICE)).version
    stale = VersionMatch(versions=[before - 1])
    for call, request in [
        (projects.AddMember, ppb.AddMemberRequest(project_id=team.id, user_id=STAFF, if_match=stale)),
        (
            projects.UpdateMember,
            ppb.UpdateMemberRequest(project_id=team.id, user_id=BOB, role=VIEWER, if_match=stale),
        ),
        (projects.RemoveMember, ppb.RemoveMemberRequest(project_id=team.id, user_id=BOB, if_match=stale)),
    ]:
        assert failure(call, request, metadata=as_user(ALICE)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "VERSION_MISMATCH",
        )
    current = VersionMatch(versions=[before])
    projects.AddMember(
        ppb.AddMemberRequest(project_id=team.id, user_id=STAFF, if_match=current), metadata=as_user(ALICE)
    )
    after = projects.GetProject(ppb.GetProjectRequest(id=team.id), metadata=as_user(ALICE)).version
    assert after == before + 1
    projects.RemoveMember(ppb.RemoveMemberRequest(project_id=team.id, user_id=STAFF), metadata=as_user(STAFF))
    assert (
        projects.GetProject(ppb.GetProjectRequest(id=team.id), metadata=as_user(ALICE)).version == after + 1
    )
