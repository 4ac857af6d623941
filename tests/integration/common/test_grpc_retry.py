"""gRPC's own retry policy, from the contract: reads are retried once on UNAVAILABLE, writes never."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2

from common.grpc_client import idempotent_methods, make_channel
from taskmgr.task.v1 import task_service_pb2, task_service_pb2_grpc

CONTRACT_FILES = [
    "taskmgr/user/v1/user_service.proto",
    "taskmgr/task/v1/task_service.proto",
    "taskmgr/task/v1/collaboration_service.proto",
    "taskmgr/notify/v1/notify_service.proto",
]


def test_the_contract_marks_every_get_route_and_nothing_that_writes():
    marked = set(idempotent_methods())
    pool = descriptor_pool.Default()
    seen_write = False
    for name in CONTRACT_FILES:
        for service in pool.FindFileByName(name).services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                if verb == "get":
                    assert (service.full_name, method.name) in marked, method.full_name
                elif verb in ("post", "patch", "put", "delete"):
                    seen_write = True
                    assert (service.full_name, method.name) not in marked, method.full_name
                    level = method.GetOptions().idempotency_level
                    assert level == descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN, method.full_name
    assert seen_write
    assert ("taskmgr.user.v1.UserService", "GetUser") in marked  # internal, no REST route


class FailsFirst(task_service_pb2_grpc.TaskServiceServicer):
    """Answers UNAVAILABLE to the first call of each method, then succeeds."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, name: str, context) -> int:  # noqa: ANN001
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "database restarting")
            return self.calls[name]

    def GetTask(self, request, context):  # noqa: ANN001, N802
        self._count("GetTask", context)
        return task_service_pb2.Task(id=request.id)

    def CreateTask(self, request, context):  # noqa: ANN001, N802
        self._count("CreateTask", context)
        return task_service_pb2.Task(id=1)

    def DeleteTask(self, request, context):  # noqa: ANN001, N802
        self._count("DeleteTask", context)
        return empty_pb2.Empty()


@pytest.fixture
def failing_server():
    servicer = FailsFirst()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    task_service_pb2_grpc.add_TaskServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = make_channel(f"127.0.0.1:{port}")
    yield servicer, task_service_pb2_grpc.TaskServiceStub(channel)
    channel.close()
    server.stop(0)


def test_a_read_is_retried_once_after_unavailable(failing_server):
    servicer, stub = failing_server
    assert stub.GetTask(task_service_pb2.GetTaskRequest(id=7), timeout=5).id == 7
    assert servicer.calls["GetTask"] == 2


@pytest.mark.parametrize("call", ["CreateTask", "DeleteTask"])
def test_a_write_is_never_retried(failing_server, call):
    servicer, stub = failing_server
    requests = {
        "CreateTask": task_service_pb2.CreateTaskRequest(),
        "DeleteTask": task_service_pb2.DeleteTaskRequest(id=1),
    }
    request = requests[call]
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, call)(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls[call] == 1
