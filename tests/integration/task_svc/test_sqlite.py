"""The embedded default: task_svc on a SQLite file, migrated from empty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from common.settings import Settings
from task_svc.server import build
from taskmgr.api.v1.preconditions_pb2 import VersionMatch
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from tests.support.tokens import TestIssuer

ISSUER = TestIssuer()
ME = ISSUER.metadata(1)


class NobodyIsAssignable:
    def check_assignable(self, user_id: int) -> str | None:
        return "No user with this id."


@pytest.fixture
def stub(tmp_path) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    settings = Settings(environment="test", var_dir=tmp_path)
    assert settings.database_url("task_svc") == f"sqlite:///{tmp_path / 'task_svc.db'}"
    server = build(settings, 0, verifier=ISSUER.verifier(), user_directory=NobodyIsAssignable()).start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield task_service_pb2_grpc.TaskServiceStub(channel)
    server.stop(0)


def test_sqlite_migrates_creates_lists_and_updates(stub) -> None:  # noqa: ANN001
    due = timestamp_pb2.Timestamp()
    due.FromDatetime(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    created = [
        stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title=f"task {n}", due_date=due)), metadata=ME)
        for n in range(5)
    ]
    mask = field_mask_pb2.FieldMask(paths=["status"])
    done = pb.Task(id=created[0].id, status=pb.TASK_STATUS_DONE)
    at_version_1 = VersionMatch(versions=[1])
    stub.UpdateTask(pb.UpdateTaskRequest(task=done, update_mask=mask, if_match=at_version_1), metadata=ME)

    first = stub.ListTasks(pb.ListTasksRequest(page_size=3), metadata=ME)
    rest = stub.ListTasks(pb.ListTasksRequest(page_size=3, page_token=first.next_page_token), metadata=ME)
    assert [t.id for t in [*first.results, *rest.results]] == [t.id for t in reversed(created)]
    assert not rest.next_page_token

    after = timestamp_pb2.Timestamp(seconds=int(dt.datetime(2029, 12, 31, tzinfo=dt.UTC).timestamp()))
    filtered = pb.ListTasksRequest(status=pb.TASK_STATUS_DONE, due_after=after, q="TASK")
    assert [t.id for t in stub.ListTasks(filtered, metadata=ME).results] == [created[0].id]
