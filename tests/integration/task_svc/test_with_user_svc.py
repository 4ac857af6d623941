"""task_svc wired as in production: a real user_svc (in-process, on its own database, on
each engine) signs the tokens, serves the JWKS that task_svc verifies them with, and
answers the assignee checks made with the caller's forwarded token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from common.db import Database
from common.settings import Settings
from task_svc.assignees import DEACTIVATED, NO_SUCH_USER, NO_SUCH_USERNAME, NOT_VERIFIED
from task_svc.server import build as build_task_svc
from taskmgr.task.v1 import project_service_pb2, project_service_pb2_grpc, task_service_pb2_grpc
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.user.v1 import user_service_pb2
from tests.integration.task_svc.support import field_violations, grpc_error, reason
from tests.integration.user_svc.support import Client, Outboxes, bearer
from tests.support.engines import ENGINES, database_url
from tests.support.tokens import TestIssuer
from user_svc.server import build as build_user_svc
from user_svc.server import build_domain
from user_svc.staff import create_staff

STAFF_PASSWORD = "operators choose long ones"


@dataclass
class Services:
    users: Client
    tasks: task_service_pb2_grpc.TaskServiceStub
    projects: project_service_pb2_grpc.ProjectServiceStub
    settings: Settings


@pytest.fixture(scope="module", params=ENGINES)
def services(request, tmp_path_factory) -> Iterator[Services]:  # noqa: ANN001
    directory = tmp_path_factory.mktemp("services")
    settings = Settings(
        environment="test", var_dir=directory,
        user_svc_database_url=database_url(request, request.param, directory, "user_svc"),
        task_svc_database_url=database_url(request, request.param, directory, "task_svc"),
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1, grpc_call_deadline=2.0,
    )
    user_svc = build_user_svc(settings, 0).start()
    # task_svc finds user_svc through settings, as it does in production (no overrides).
    task_svc = build_task_svc(settings.model_copy(update={"user_svc_addr": f"127.0.0.1:{user_svc.port}"}), 0)
    task_svc.start()
    user_db = Database(settings.user_svc_database_url, pool_size=1)
    with (
        grpc.insecure_channel(f"127.0.0.1:{user_svc.port}") as user_channel,
        grpc.insecure_channel(f"127.0.0.1:{task_svc.port}") as task_channel,
    ):
        users = Client(user_channel, Outboxes(user_db))
        yield Services(
            users, task_service_pb2_grpc.TaskServiceStub(task_channel),
            project_service_pb2_grpc.ProjectServiceStub(task_channel), settings,
        )
    task_svc.stop(0)
    user_db.dispose()
    user_svc.stop(0)


def signed_in(users: Client) -> tuple[int, list[tuple[str, str]]]:
    user = users.verified_user()
    return user.id, bearer(users.login(user.username).access)


def test_tokens_of_user_svc_are_accepted_and_assignment_asks_it(services: Services) -> None:
    _alice, alice = signed_in(services.users)
    bob_id, bob = signed_in(services.users)
    unverified, _email = services.users.register()

    task = services.tasks.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="t")), metadata=alice)
    assigned = services.tasks.AssignTask(pb.AssignTaskRequest(id=task.id, user_id=bob_id), metadata=alice)
    assert assigned.assigned_to == bob_id
    assert services.tasks.GetTask(pb.GetTaskRequest(id=task.id), metadata=bob).id == task.id

    # To anyone but staff an unconfirmed sign-up is a user nobody has (user_svc's rule).
    for user_id in (unverified.id, unverified.id + 1000):
        request = pb.AssignTaskRequest(id=task.id, user_id=user_id)
        error = grpc_error(services.tasks.AssignTask, request, metadata=alice)
        assert (error.code(), reason(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "ASSIGNEE_INVALID")
        assert field_violations(error)["user_id"] == NO_SUCH_USER


def test_a_deactivated_or_unconfirmed_account_is_neither_assignee_nor_new_member(services: Services) -> None:
    """Non-staff get the answer for a user nobody has (nothing tells them the account
    exists); staff are told why. Reactivated, the account may be given work again."""
    users = services.users
    _carol_id, carol = signed_in(users)
    bob = users.verified_user()
    unverified, _email = users.register()
    staff_name = f"staff{unverified.id}"
    domain = build_domain(services.settings)
    try:
        create_staff(domain, staff_name, f"{staff_name}@example.com", lambda: STAFF_PASSWORD)
    finally:
        domain.database.dispose()
    staff = bearer(users.login(staff_name, STAFF_PASSWORD).access)
    users.stub.DeactivateUser(user_service_pb2.DeactivateUserRequest(id=bob.id), metadata=staff)

    def refusals(caller: list[tuple[str, str]]) -> list[tuple]:  # noqa: ANN001
        project = services.projects.CreateProject(
            project_service_pb2.CreateProjectRequest(project=project_service_pb2.Project(name="p")),
            metadata=caller,
        )
        answers = []
        for user in (bob, unverified):
            create = pb.CreateTaskRequest(task=pb.Task(title="t", assigned_to=user.id))
            by_id = project_service_pb2.AddMemberRequest(project_id=project.id, user_id=user.id)
            by_name = project_service_pb2.AddMemberRequest(project_id=project.id, username=user.username)
            for call, request, field in [
                (services.tasks.CreateTask, create, "assigned_to"),
                (services.projects.AddMember, by_id, "user_id"),
                (services.projects.AddMember, by_name, "username"),
            ]:
                error = grpc_error(call, request, metadata=caller)
                answers.append((error.code(), reason(error), field_violations(error).get(field)))
        return answers

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    unknown = [(invalid, "ASSIGNEE_INVALID", NO_SUCH_USER), (invalid, "MEMBER_INVALID", NO_SUCH_USER),
               (invalid, "MEMBER_INVALID", NO_SUCH_USERNAME)]
    assert refusals(carol) == unknown * 2
    told = [(code, why, problem) for problem in (DEACTIVATED, NOT_VERIFIED) for code, why, _ in unknown]
    assert refusals(staff) == told

    users.stub.ReactivateUser(user_service_pb2.ReactivateUserRequest(id=bob.id), metadata=staff)
    create = pb.CreateTaskRequest(task=pb.Task(title="t", assigned_to=bob.id))
    task = services.tasks.CreateTask(create, metadata=carol)
    assert task.assigned_to == bob.id


def test_a_forged_token_is_refused(services: Services) -> None:
    forged = TestIssuer().metadata(1)  # well formed, but not signed by user_svc's key
    error = grpc_error(services.tasks.ListTasks, pb.ListTasksRequest(), metadata=forged)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
