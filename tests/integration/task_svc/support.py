"""Helpers of task_svc's integration tests: a fake UserService, bulk inserts, and
reading the rich error details of a failed call."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy import insert, select

from common.db import Database
from common.errors import read_details
from task_svc.models import Outbox, Task
from taskmgr.events.v1 import events_pb2
from taskmgr.user.v1 import user_service_pb2, user_service_pb2_grpc

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
