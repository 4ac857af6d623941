"""NUL and control characters in any string of any public UserService request are
INVALID_ARGUMENT naming the field, on both engines (PostgreSQL cannot hold NUL in text: a
NUL reaching a query was INTERNAL), whoever calls: the check is in the one interceptor."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import symbol_database
from grpc_status import rpc_status

from common.errors import read_details
from common.options import is_public
from taskmgr.user.v1 import user_service_pb2 as pb

_SERVICE = pb.DESCRIPTOR.services_by_name["UserService"]


def _strings(method) -> list[tuple[str, str]]:  # noqa: ANN001
    return [
        (field.name, method.name)
        for field in method.input_type.fields
        if field.type == field.TYPE_STRING and not field.is_repeated
    ]


# (method, string field) for every string field of every public method's request.
CASES = [
    (method.name, name) for method in _SERVICE.methods if is_public(method) for name, _ in _strings(method)
]


@pytest.mark.parametrize(("method", "field"), CASES)
@pytest.mark.parametrize("bad", ["a\x00b", "a\x1b[2Jb"])
def test_control_characters_in_any_public_string_field_are_invalid_argument(client, method, field, bad):
    descriptor = _SERVICE.methods_by_name[method]
    request_class = symbol_database.Default().GetSymbol(descriptor.input_type.full_name)
    # Every other string field filled, so the request fails on `field` or not at all.
    others = {
        name: "x@example.com" if "email" in name else "plain-text-1234" for name, _ in _strings(descriptor)
    }
    request = request_class(**{**others, field: bad})

    with pytest.raises(grpc.RpcError) as caught:
        getattr(client.stub, method)(request, timeout=10)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field in read_details(rpc_status.from_call(caught.value)).fields
