"""Instant revocation reaches task_svc: a real user_svc and task_svc (PostgreSQL), once
with no broker (task_svc follows user_svc's WatchRevocations stream) and once through
RabbitMQ (task_svc's own exclusive queue on the topic exchange, the outbox relay
publishing). Logout, a password change and a deactivation are 401 TOKEN_REVOKED at
task_svc within 1 s of the revoking call's answer; a task_svc started after the
revocations learns them before it serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from sqlalchemy import update

from common.db import Database
from common.settings import Settings
from task_svc.server import build as build_task_svc
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from taskmgr.user.v1 import user_service_pb2 as upb
from tests.integration.events.broker import unique_topology
from tests.integration.task_svc.support import grpc_error, reason
from tests.integration.user_svc.support import PASSWORD, Client, Outboxes, bearer
from tests.support.engines import database_url
from user_svc.models import User
from user_svc.server import build as build_user_svc

WITHIN_SECONDS = 1.0


@dataclass
class Stack:
    settings: Settings
    users: Client
    tasks: task_service_pb2_grpc.TaskServiceStub


@pytest.fixture(scope="module", params=["embedded", "rabbitmq"])
def stack(request, tmp_path_factory) -> Iterator[Stack]:  # noqa: ANN001
    directory = tmp_path_factory.mktemp("revocation")
    broker = {}
    if request.param == "rabbitmq":
        rabbitmq = request.getfixturevalue("rabbitmq")
        topology = unique_topology(rabbitmq)
        broker = {
            "amqp_url": rabbitmq.url, "events_exchange": topology.exchange, "notify_queue": topology.queue
        }
    settings = Settings(
        environment="test", var_dir=directory,
        user_svc_database_url=database_url(request, "postgresql", directory, "user_svc"),
        task_svc_database_url=database_url(request, "postgresql", directory, "task_svc"),
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1, grpc_call_deadline=2.0,
        notify_svc_addr="127.0.0.1:1", **broker,
    )
    user_svc = build_user_svc(settings, 0).start()
    settings = settings.model_copy(update={"user_svc_addr": f"127.0.0.1:{user_svc.port}"})
    task_svc = build_task_svc(settings, 0).start()
    user_db = Database(settings.user_svc_database_url, pool_size=1)
    with (
        grpc.insecure_channel(f"127.0.0.1:{user_svc.port}") as user_channel,
        grpc.insecure_channel(f"127.0.0.1:{task_svc.port}") as task_channel,
    ):
        users = Client(user_channel, Outboxes(user_db), settings.secret("internal_key"))
        yield Stack(settings, users, task_service_pb2_grpc.TaskServiceStub(task_channel))
    task_svc.stop(0)
    user_db.dispose()
    user_svc.stop(0)


def seconds_until_refused(tasks: task_service_pb2_grpc.TaskServiceStub, access: str) -> float:
    """Calls task_svc with `access` until it is refused (TOKEN_REVOKED); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < 5:
        try:
            tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(access))
        except grpc.RpcError as error:
            assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
            return time.monotonic() - started
        time.sleep(0.005)
    raise AssertionError("the token was still accepted after 5 s")


def signed_in(users: Client) -> tuple[upb.User, upb.LoginResponse]:
    # Verified in the database, not with the emailed code: with a broker the outbox relay
    # may publish (and delete) the code's event before the test could read it.
    user, _email = users.register()
    with users.outbox.database.transaction() as session:
        session.execute(update(User).where(User.id == user.id).values(email_verified=True))
    return user, users.login(user.username)


def test_logout_is_refused_at_task_svc_within_a_second(stack: Stack) -> None:
    _, login = signed_in(stack.users)
    _, other = signed_in(stack.users)
    stack.tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(login.access))  # verified, remembered
    stack.users.stub.RevokeToken(upb.RevokeTokenRequest(refresh=login.refresh))
    assert seconds_until_refused(stack.tasks, login.access) < WITHIN_SECONDS
    stack.tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(other.access))  # others go on


def test_a_password_change_is_refused_at_task_svc_within_a_second(stack: Stack) -> None:
    _, login = signed_in(stack.users)
    stack.tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(login.access))
    stack.users.stub.ChangePassword(
        upb.ChangePasswordRequest(old_password=PASSWORD, new_password="a brand new battery horse"),
        metadata=bearer(login.access),
    )
    assert seconds_until_refused(stack.tasks, login.access) < WITHIN_SECONDS


def test_a_deactivation_is_refused_at_task_svc_within_a_second(stack: Stack) -> None:
    staff_user, _ = signed_in(stack.users)
    with stack.users.outbox.database.transaction() as session:
        session.execute(update(User).where(User.id == staff_user.id).values(is_staff=True))
    staff = stack.users.login(staff_user.username)
    user, login = signed_in(stack.users)
    stack.tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(login.access))
    stack.users.stub.DeactivateUser(upb.DeactivateUserRequest(id=user.id), metadata=bearer(staff.access))
    assert seconds_until_refused(stack.tasks, login.access) < WITHIN_SECONDS


def test_a_task_svc_started_later_learns_the_revocations_before_it_serves(stack: Stack) -> None:
    _, login = signed_in(stack.users)
    stack.users.stub.RevokeToken(upb.RevokeTokenRequest(refresh=login.refresh))
    late = build_task_svc(stack.settings, 0).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{late.port}") as channel:
            tasks = task_service_pb2_grpc.TaskServiceStub(channel)
            # The very first call: no event reached it; the snapshot did.
            error = grpc_error(tasks.ListTasks, pb.ListTasksRequest(), metadata=bearer(login.access))
            assert (error.code(), reason(error)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REVOKED")
    finally:
        late.stop(0)


def test_revocations_missed_while_user_svc_was_away_are_learned_on_reconnect(request, tmp_path) -> None:  # noqa: ANN001
    """No broker: the stream breaks when user_svc stops; a logout served meanwhile by
    another replica reaches task_svc in the snapshot of its next stream."""
    from tests.support.local import free_port

    port = free_port()
    settings = Settings(
        environment="test", var_dir=tmp_path,
        user_svc_database_url=database_url(request, "postgresql", tmp_path, "user_svc"),
        task_svc_database_url=database_url(request, "postgresql", tmp_path, "task_svc"),
        argon2_time_cost=1, argon2_memory_cost_kib=1024, argon2_parallelism=1, grpc_call_deadline=2.0,
        notify_svc_addr="127.0.0.1:1", user_svc_addr=f"127.0.0.1:{port}",
    )
    first = build_user_svc(settings, port).start()
    task_svc = build_task_svc(settings, 0).start()
    other = build_user_svc(settings, 0).start()
    user_db = Database(settings.user_svc_database_url, pool_size=1)
    stops = [user_db.dispose, lambda: other.stop(0), lambda: task_svc.stop(0)]
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{other.port}") as other_channel,
            grpc.insecure_channel(f"127.0.0.1:{task_svc.port}") as task_channel,
        ):
            users = Client(other_channel, Outboxes(user_db), settings.secret("internal_key"))
            tasks = task_service_pb2_grpc.TaskServiceStub(task_channel)
            _, login = signed_in(users)
            tasks.ListTasks(pb.ListTasksRequest(), metadata=bearer(login.access))
            first.stop(0)  # task_svc's stream breaks
            users.stub.RevokeToken(upb.RevokeTokenRequest(refresh=login.refresh))
            second = build_user_svc(settings, port).start()  # user_svc is back on its address
            stops.append(lambda: second.stop(0))
            assert seconds_until_refused(tasks, login.access) < 3.0
    finally:
        for stop in reversed(stops):
            stop()
