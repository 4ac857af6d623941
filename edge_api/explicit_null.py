"""REQUIRED fields whose null is a value of its own: named in the body, null included.

A proto3 `optional` field annotated `google.api.field_behavior = REQUIRED` (AIP-203)
means: the client must say what it wants, and null is one of the answers
(`AssignTaskRequest.user_id`: null unassigns). Over gRPC unset and null are one state,
so only the JSON body can tell `{"user_id": null}` from `{}`: this check is the edge's
share of REQUIRED, and every other REQUIRED field is checked where every request is, in
the services (common.contract_rules). A missing key is a 400 naming the field, so an
empty body can never be taken for the null action.

Not for PATCH: an update names the fields it changes (AIP-134).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

if TYPE_CHECKING:
    from edge_api.contract import Route

MESSAGE = "This field is required (null is allowed)."


def missing_fields(route: Route, body: Any) -> dict[str, list[str]]:
    """{dotted path: [message]} for each such field the JSON body leaves out."""
    if route.verb == "PATCH" or not route.body or not isinstance(body, dict):
        return {}
    request = route.method.input_type
    if route.body == "*":
        bound = {v.path.split(".")[0] for v in route.path_variables}
        bound |= {f.name for f in route.header_fields.values()}
        return {path: [MESSAGE] for path in _missing(request, body, "", bound)}
    resource = request.fields_by_name[route.body].message_type
    if resource is None:
        return {}
    return {path: [MESSAGE] for path in _missing(resource, body, "", set())}


def _missing(descriptor: Descriptor, body: dict[str, Any], prefix: str, bound: set[str]) -> Iterator[str]:
    for field in descriptor.fields:
        if field.name in bound:
            continue
        if field.name not in body:
            if _null_is_a_value(field) and _is_required(field):
                yield prefix + field.name
            continue
        value = body[field.name]
        nested = field.message_type
        if isinstance(value, dict) and nested is not None and not nested.full_name.startswith("google."):
            yield from _missing(nested, value, f"{prefix}{field.name}.", set())


def _null_is_a_value(field: FieldDescriptor) -> bool:
    """A proto3 `optional` scalar: it has presence, and no message type."""
    return field.has_presence and field.message_type is None and not field.is_repeated


def _is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
