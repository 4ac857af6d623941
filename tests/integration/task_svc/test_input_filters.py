"""Strings and times from a query string reach task_svc as request fields: the service
checks them as it checks body fields, on both engines (PostgreSQL refuses NUL in text,
a 500 before; SQLite stores it), and for direct gRPC callers as for the edge."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status

from common.errors import read_details
from common.settings import Settings
from task_svc.server import build
from taskmgr.task.v1 import task_service_pb2 as pb
from taskmgr.task.v1 import task_service_pb2_grpc
from tests.support.tokens import TestIssuer

ISSUER = TestIssuer()
ME = ISSUER.metadata(1)
_FIELDS = pb.ListTasksRequest.DESCRIPTOR.fields
# Whichever filters are strings (the contract may type some as enums or Timestamps).
TEXT_FILTERS = [field.name for field in _FIELDS if field.type == field.TYPE_STRING]
DUE_IS_TEXT = "due_before" in TEXT_FILTERS


class NobodyIsAssignable:
    def check_assignable(self, user_id: int) -> str | None:
        return "No user with this id."


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stub(request, tmp_path_factory) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    database = {}
    if request.param == "postgresql":
        database["task_svc_database_url"] = request.getfixturevalue("postgres").create_database()
    settings = Settings(
        environment="test", var_dir=tmp_path_factory.mktemp(request.param), notify_svc_addr="127.0.0.1:1",
        **database,
    )
    server = build(settings, 0, verifier=ISSUER.verifier(), user_directory=NobodyIsAssignable()).start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="a task")), metadata=ME)
        yield stub
    server.stop(0)


def _refused(call, request) -> set[str]:
    """The fields named by an INVALID_ARGUMENT answer (any other answer fails)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=ME, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return set(read_details(rpc_status.from_call(caught.value)).fields)


@pytest.mark.parametrize("field", TEXT_FILTERS)
@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "\x7f"])
def test_nul_and_control_characters_in_any_text_filter_are_invalid_argument(stub, field, bad):
    assert _refused(stub.ListTasks, pb.ListTasksRequest(**{field: bad})) == {field}


def test_the_text_filter_is_bounded(stub):
    assert _refused(stub.ListTasks, pb.ListTasksRequest(q="x" * 201)) == {"q"}
    assert len(stub.ListTasks(pb.ListTasksRequest(q="x" * 200), metadata=ME).results) == 0


@pytest.mark.skipif(not DUE_IS_TEXT, reason="due_before is a Timestamp: the edge parses its text")
@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: INTERNAL before
        "9999-12-31T23:59:59-01:00",
        "2030-01-01T00:00:00+00:90",  # read as 22:30 the day before
        "2030-01-01T00:00:00",
        "2030-W01-1T00:00:00Z",
        "\u0662\u0660\u0663\u0660-01-01T00:00:00Z",
    ],
)
def test_date_time_filters_are_strict_rfc_3339(stub, text):
    assert _refused(stub.ListTasks, pb.ListTasksRequest(due_before=text, due_after=text)) == {
        "due_before", "due_after"
    }


OUT_OF_RANGE = [(-62_135_596_801, 0), (253_402_300_800, 0), (0, -1), (0, 10**9)]


@pytest.mark.parametrize(("seconds", "nanos"), OUT_OF_RANGE)
def test_a_timestamp_no_datetime_can_hold_is_invalid_argument(stub, seconds, nanos):
    due = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    create = pb.CreateTaskRequest(task=pb.Task(title="t", due_date=due))

    assert any("due_date" in name for name in _refused(stub.CreateTask, create))
    if not DUE_IS_TEXT:
        listing = pb.ListTasksRequest(due_before=due)
        assert any("due_before" in name for name in _refused(stub.ListTasks, listing))


def test_nul_in_any_body_field_is_refused_before_the_database(stub):
    request = pb.CreateTaskRequest(task=pb.Task(title="t", description="a\x00b"), request_id="key\x00")

    assert _refused(stub.CreateTask, request) == {"task.description", "request_id"}
