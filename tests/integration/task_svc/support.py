"""Helpers of task_svc's integration tests: a fake UserService, bulk inserts, Tasks on a
database whose round trips are counted, and reading the rich error details of a failed
call."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy import insert, select

from common.db import Database, migrate
from common.errors import read_details
from common.paging import PageTokens
from task_svc.listing import POSTGRES_SETTINGS
from task_svc.models import Outbox, Task
from task_svc.server import MIGRATIONS
from task_svc.tasks import Tasks
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.support.pg_round_trips import RoundTripCounter

# Users the fake user_svc knows: id -> email verified.
ALICE, BOB, CAROL, UNVERIFIED, STAFF = 1, 2, 3, 4, 5
KNOWN_USERS = {ALICE: True, BOB: True, CAROL: True, UNVERIFIED: False, STAFF: True}


@dataclass
class FakeUserService(user_service_pb2_grpc.UserServiceServicer):
    users: dict[int, bool]
    calls: list[dict] = field(default_factory=list)
    delay: float = 0.0  # seconds each answer takes (a slow user_svc)

    def GetUser(self, request, context):  # noqa: N802
        self.calls.append(
            {"id": request.id, "metadata": dict(context.invocation_metadata()),
             "time_remaining": context.time_remaining()}
        )
        time.sleep(self.delay)
        if request.id not in self.users:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such user")
        return user_service_pb2.User(
            id=request.id, username=f"user{request.id}", email_verified=self.users[request.id],
            is_active=True,
        )

    def LookupUser(self, request, context):  # noqa: N802
        """Users are called user<id> (any case)."""
        self.calls.append({"username": request.username, "metadata": dict(context.invocation_metadata())})
        name = request.username.lower()
        user_id = int(name[4:]) if name.startswith("user") and name[4:].isdigit() else None
        if user_id not in self.users:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such user")
        return user_service_pb2.User(
            id=user_id, username=f"user{user_id}", email_verified=self.users[user_id],
            is_staff=user_id == STAFF, is_active=True,
        )


@dataclass
class RunningFake:
    servicer: FakeUserService
    server: grpc.Server
    port: int


class AnyoneAssignable:
    """The assignee check of Tasks, admitting everyone (no user_svc)."""

    def check_assignable(self, user_id: int) -> None:
        return None


@contextmanager
def counted_tasks(pg_url: str, *, pool_size: int) -> Iterator[tuple[Tasks, RoundTripCounter]]:
    """Tasks on a migrated PostgreSQL database reached through a round-trip counter."""
    counter = RoundTripCounter(pg_url)
    database = Database(counter.url, pool_size=pool_size, postgres_settings=POSTGRES_SETTINGS)
    try:
        migrate(database, MIGRATIONS)
        yield Tasks(database, AnyoneAssignable(), PageTokens(b"k" * 32)), counter
    finally:
        database.dispose()
        counter.close()


def outbox_events(database: Database) -> list[events_pb2.Event]:
    with database.read() as session:
        return [row.event() for row in session.scalars(select(Outbox).order_by(Outbox.id))]


def bulk_insert(database: Database, rows: list[dict]) -> list[int]:
    """Inserts tasks in one statement (defaults filled in); returns their ids in order."""
    now = dt.datetime.now(dt.UTC)
    defaults = {
        "description": "", "status": "pending", "priority": 2, "due_date": None, "assigned_to": None,
        "created_at": now, "updated_at": now, "version": 1,
    }
    with database.transaction() as session:
        result = session.execute(
            insert(Task).returning(Task.id, sort_by_parameter_order=True), [defaults | row for row in rows]
        )
        return list(result.scalars())


def grpc_error(call, *args, **kwargs) -> grpc.RpcError:  # noqa: ANN001
    """The RpcError that call(*args) raises (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as error:
        call(*args, **kwargs)
    return error.value


def reason(error: grpc.RpcError) -> str:
    return read_details(rpc_status.from_call(error)).reason


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """Each field at fault and (the last of) its problems."""
    fields = read_details(rpc_status.from_call(error)).fields
    return {name: problems[-1] for name, problems in fields.items()}
