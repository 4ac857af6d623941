import grpc
from google.rpc import code_pb2, error_details_pb2

from common.errors import InvalidArgument, NotFound, ResourceExhausted


def _details(status):
    found = {}
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                found[kind.__name__] = message
    return found


def test_status_carries_code_reason_and_field_violations():
    fields = {"title": "Too long.", "q": ["a", "b"]}
    status = InvalidArgument("INVALID_ARGUMENT", "Bad.", fields=fields).to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message == "Bad."
    details = _details(status)
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    assert details["ErrorInfo"].domain == "taskmgr"
    violations = [(v.field, v.description) for v in details["BadRequest"].field_violations]
    assert violations == [("title", "Too long."), ("q", "a"), ("q", "b")]
    assert "RetryInfo" not in details


def test_retry_after_is_rounded_up_to_whole_seconds():
    status = ResourceExhausted("LOGIN_THROTTLED", "Slow down.", retry_after=2.1).to_status()
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert _details(status)["RetryInfo"].retry_delay.seconds == 3


def test_grpc_codes_match_the_classes():
    assert NotFound("X", "x").code is grpc.StatusCode.NOT_FOUND
    assert NotFound("X", "x").to_status().code == code_pb2.NOT_FOUND
