"""PATCH and its update mask (AIP-134), the same for every update method.

An update request holds its resource (the route's body field) and a
`google.protobuf.FieldMask update_mask`, given over REST as the query parameter
`?update_mask=title,due_date`:
- the fields named change, and a field named but absent from the body is cleared (its
  default, or null); fields of the body that the mask does not name are left alone;
- `*` alone replaces the whole resource: every field that is not OUTPUT_ONLY is named;
- absent or empty, the mask is the set of fields present in the body (AIP-134's implied
  mask, as grpc-gateway infers it);
- a path that names no field of the resource is a 400 naming the fields there are
  (AIP-161: a write whose mask points to a value that cannot exist is INVALID_ARGUMENT);
- a path naming an OUTPUT_ONLY field (`?update_mask=id`) is no error and changes nothing:
  AIP-203 says services must ignore output-only fields in update masks, AIP-161 that the
  mask a client reads with must serve to write with. Each service drops them (its
  mask_fields); a body holding one is still refused as read-only (AIP-161 allows it).
Paths are the snake_case names of the body (`due_date`), as everywhere on the REST
surface; the proto3 JSON mapping's lowerCamelCase (`dueDate`) is accepted too. Nested
fields are dotted (`parent.child`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from edge_api.options import is_output_only

if TYPE_CHECKING:
    from edge_api.contract import Route

FIELD_MASK = "google.protobuf.FieldMask"
_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def parse_paths(text: str) -> list[str]:
    """`"title, dueDate,,a.b"` -> ["title", "due_date", "a.b"]; ValueError for a path
    that is not a dotted field name."""
    paths = []
    for raw in text.split(","):
        path = raw.strip()
        if not path:
            continue
        if path == "*":
            paths.append(path)
            continue
        segments = []
        for segment in path.split("."):
            if _SNAKE.fullmatch(segment):
                segments.append(segment)
            elif _CAMEL.fullmatch(segment):
                segments.append(re.sub(r"(?<!^)(?=[A-Z])", "_", segment).lower())
            else:
                raise ValueError(f"{path!r} is not a field path (snake_case names, dotted)")
        paths.append(".".join(segments))
    return paths


def resolve(route: Route, message: Message, body: Any) -> None:
    """Sets `message.update_mask` to the paths the update changes (see the module
    docstring). Raises ValueError naming what is wrong with the mask."""
    mask_field = message.DESCRIPTOR.fields_by_name.get("update_mask")
    if route.verb != "PATCH" or route.body in ("", "*") or mask_field is None:
        return
    if mask_field.message_type is None or mask_field.message_type.full_name != FIELD_MASK:
        return
    resource = message.DESCRIPTOR.fields_by_name[route.body].message_type
    paths = list(message.update_mask.paths)
    if "*" in paths:
        if len(paths) > 1:
            raise ValueError("`*` replaces every field and stands alone")
        paths = [f.name for f in resource.fields if not is_output_only(f)]
    elif not paths:
        paths = _body_paths(body if isinstance(body, dict) else {}, resource, "")
    unknown = [path for path in paths if not _names_a_field(resource, path)]
    if unknown:
        fields = ", ".join(f.name for f in resource.fields if not is_output_only(f))
        raise ValueError(f"no such field: {', '.join(unknown)} (fields: {fields})")
    del message.update_mask.paths[:]
    message.update_mask.paths.extend(paths)


def _names_a_field(descriptor: Descriptor | None, path: str) -> bool:
    for name in path.split("."):
        if descriptor is None or name not in descriptor.fields_by_name:
            return False
        descriptor = descriptor.fields_by_name[name].message_type
    return True


def _body_paths(body: dict[str, Any], descriptor: Descriptor, prefix: str) -> list[str]:
    """The fields present in the body, a nested message's own fields one by one."""
    paths = []
    for key, value in body.items():
        field = descriptor.fields_by_name.get(key)
        nested = field.message_type if field is not None else None
        well_known = nested is not None and nested.full_name.startswith("google.protobuf.")
        if isinstance(value, dict) and value and nested is not None and not well_known:
            paths.extend(_body_paths(value, nested, f"{prefix}{key}."))
        else:
            paths.append(prefix + key)
    return paths
