"""Project races on PostgreSQL and SQLite (calls fired at once over gRPC): owners who
demote or remove each other at once never leave a project without an owner, and an
assignment racing the assignee's removal never leaves a non-member assigned."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import select

from task_svc.models import ProjectMember, Task
from taskmgr.task.v1 import project_service_pb2 as ppb
from taskmgr.task.v1 import project_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, CAROL
from tests.support.parallel import at_once, failed, succeeded

ROUNDS = 8


@pytest.fixture
def projects(server) -> Iterator[project_service_pb2_grpc.ProjectServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield project_service_pb2_grpc.ProjectServiceStub(channel)


def owners(database, project_id: int) -> list[int]:  # noqa: ANN001
    with database.read() as session:
        return list(
            session.scalars(
                select(ProjectMember.user_id).where(
                    ProjectMember.project_id == project_id, ProjectMember.role == "owner"
                )
            )
        )


@pytest.mark.parametrize("how", ["demote", "remove"])
def test_two_owners_stepping_down_at_once_leave_one(projects, as_user, database, how: str) -> None:
    for _ in range(ROUNDS):
        project = projects.CreateProject(
            ppb.CreateProjectRequest(project=ppb.Project(name="race")), metadata=as_user(ALICE)
        )
        projects.AddMember(
            ppb.AddMemberRequest(project_id=project.id, user_id=BOB, role=ppb.PROJECT_ROLE_OWNER),
            metadata=as_user(ALICE),
        )

        def step_down(user_id: int):  # noqa: ANN202
            if how == "demote":
                request = ppb.UpdateMemberRequest(
                    project_id=project.id, user_id=user_id, role=ppb.PROJECT_ROLE_MEMBER
                )
                return lambda: projects.UpdateMember(request, metadata=as_user(user_id))
            request = ppb.RemoveMemberRequest(project_id=project.id, user_id=user_id)
            return lambda: projects.RemoveMember(request, metadata=as_user(user_id))

        outcomes = at_once([step_down(ALICE), step_down(BOB)])
        assert len(succeeded(outcomes)) == 1, outcomes
        (refused,) = failed(outcomes)
        assert refused.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED)
        assert len(owners(database, project.id)) == 1


def test_an_assignment_racing_the_assignees_removal_leaves_no_outsider_assigned(
    projects, stub, as_user, database
) -> None:
    project = projects.CreateProject(
        ppb.CreateProjectRequest(project=ppb.Project(name="race")), metadata=as_user(ALICE)
    )
    for _ in range(ROUNDS):
        projects.AddMember(
            ppb.AddMemberRequest(project_id=project.id, user_id=CAROL), metadata=as_user(ALICE)
        )
        task = stub.CreateTask(
            pb.CreateTaskRequest(task=pb.Task(title="t", project_id=project.id)), metadata=as_user(ALICE)
        )
        at_once(
            [
                lambda: stub.AssignTask(
                    pb.AssignTaskRequest(id=task.id, user_id=CAROL), metadata=as_user(ALICE)
                ),
                lambda: projects.RemoveMember(
                    ppb.RemoveMemberRequest(project_id=project.id, user_id=CAROL), metadata=as_user(ALICE)
                ),
            ]
        )
        with database.read() as session:
            assert session.get(Task, task.id).assigned_to is None  # Carol is gone: so is her assignment
            assert session.get(ProjectMember, (project.id, CAROL)) is None
