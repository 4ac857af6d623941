"""The contract's per-user limit on the methods that email somebody else holds in
task_svc for direct gRPC callers: Carol unassigning and reassigning Bob in a loop (an
email to Bob each time, with a text she chose) is refused RESOURCE_EXHAUSTED with
RetryInfo past AssignTask's "30/minute", while Alice, calling from the same address, is
not affected (the budget is the user's, not the address's)."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status

from common.errors import read_details
from common.options import find_method, rate_limit_option
from taskmgr.task.v1 import task_service_pb2 as pb
from tests.integration.task_svc.support import ALICE, BOB, CAROL, grpc_error

ASSIGN = "/taskmgr.task.v1.TaskService/AssignTask"


def test_a_user_over_the_assign_limit_is_refused_and_another_user_is_not(stub, as_user) -> None:
    assert rate_limit_option(find_method(ASSIGN)) == "30/minute;300/hour"
    carol, alice = as_user(CAROL), as_user(ALICE)
    mine = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="Bob's", assigned_to=BOB)), metadata=carol)
    for n in range(30):  # every other one emails Bob
        request = pb.AssignTaskRequest(id=mine.id, user_id=BOB) if n % 2 else pb.AssignTaskRequest(id=mine.id)
        stub.AssignTask(request, metadata=carol)

    error = grpc_error(stub.AssignTask, pb.AssignTaskRequest(id=mine.id, user_id=BOB), metadata=carol)
    details = read_details(rpc_status.from_call(error))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED" and details.retry_after >= 1

    # Alice, from the same address (127.0.0.1), has her own budget.
    hers = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(title="Alice's")), metadata=alice)
    assigned = stub.AssignTask(pb.AssignTaskRequest(id=hers.id, user_id=BOB), metadata=alice)
    assert assigned.assigned_to == BOB
