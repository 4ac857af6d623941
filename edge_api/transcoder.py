"""HTTP request -> gRPC request message -> gRPC call -> HTTP response, for any Route.

The bindings come from the contract (edge_api.contract): path variables first set
nothing the body may set again, the body is `*` or one field, the remaining fields come
from the query string, and fields marked with `http_header` from headers. No method
has code of its own here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from flask import Flask, Response, current_app, g, request
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from werkzeug.exceptions import UnsupportedMediaType

from common import client_ip
from edge_api import options, preconditions
from edge_api.backends import Backends
from edge_api.contract import Route
from edge_api.errors import EdgeProblem
from edge_api.json_codec import (
    FieldErrors,
    InvalidFields,
    is_well_known,
    json_to_message,
    message_to_json,
    scalar_from_string,
)

View = Callable[..., Response]
Authenticate = Callable[[Route], None]


def make_view(route: Route, backends: Backends, authenticate: Authenticate) -> View:
    def view(**path_values: str) -> Response:
        authenticate(route)  # 401 before anything in the request is validated
        message = build_request(route, path_values)
        preconditions.check_before_call(route)
        reply = backends.call(route, message, grpc_metadata())
        return build_response(route, reply)

    # Flask-Limiter keys a view's limits by its qualified name: make it unique per route.
    view.__name__ = view.__qualname__ = route.endpoint
    view.__doc__ = None  # flasgger must not read a docstring: the document is generated
    return view


def register_routes(app: Flask, routes: list[Route], views: dict[str, View]) -> None:
    for route in routes:
        for rule in route.flask_rules:
            app.add_url_rule(
                rule, endpoint=route.endpoint, view_func=views[route.endpoint], methods=[route.verb]
            )


def grpc_metadata() -> list[tuple[str, str]]:
    # The client's address, with the MAC that makes the services believe it.
    key = current_app.config["TASKMGR_CLIENT_IP_KEY"]
    vouched = client_ip.vouched_metadata(key, request.remote_addr or "")
    metadata = [("x-request-id", g.request_id), *vouched]
    authorization = request.headers.get("Authorization", "")
    # gRPC refuses metadata that is not printable ASCII; such a header is no valid
    # token anyway, so the service answers UNAUTHENTICATED as for a missing one.
    if authorization and authorization.isascii() and authorization.isprintable():
        metadata.append(("authorization", authorization))
    return metadata


# --- request --------------------------------------------------------------------------


def build_request(route: Route, path_values: dict[str, str]) -> Message:
    message = route.request_class()
    errors: FieldErrors = {}
    body = _read_body(route, errors) if route.body else None
    if route.body:
        target = message if route.body == "*" else getattr(message, route.body)
        target.SetInParent()  # an empty body still sets a body field: `{}` is a value
        try:
            json_to_message(body, target)
        except InvalidFields as exc:
            errors.update(exc.errors)
    for variable in route.path_variables:
        _set_text(message, variable.path, [path_values[variable.rule_name]], errors)
    for name in request.args:
        if name not in route.query_fields:
            errors.setdefault(name, []).append("unknown query parameter")
        else:
            _set_text(message, name, request.args.getlist(name), errors)
    for header, field in route.header_fields.items():
        value = request.headers.get(header)
        if value is not None:
            _set_header(message, field, header, value, errors)
    if errors:
        raise InvalidFields(errors)
    if route.verb == "PATCH" and route.body not in ("", "*") and isinstance(body, dict):
        _infer_update_mask(message, route.body, body)
    return message


def _read_body(route: Route, errors: FieldErrors) -> Any:
    data = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413, unread
    if not data.strip():
        return {}  # no body at all means no fields, not a wrong content type
    if not request.is_json:
        raise UnsupportedMediaType("The body must be JSON (Content-Type: application/json).")
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise EdgeProblem(400, f"The body is not valid JSON: {exc}", "MALFORMED_JSON") from None
    if not isinstance(body, dict):
        raise EdgeProblem(400, "The body must be a JSON object.", "MALFORMED_JSON")
    if route.body == "*":
        # Fields bound to the path or a header are not body fields: say where they go.
        for variable in route.path_variables:
            if body.pop(variable.path.split(".")[0], None) is not None:
                errors.setdefault(variable.path, []).append("given in the path, not the body")
        for header, field in route.header_fields.items():
            if body.pop(field.name, None) is not None:
                errors.setdefault(field.name, []).append(f"given in the {header} header")
    return body


def _set_text(message: Message, path: str, values: list[str], errors: FieldErrors) -> None:
    *parents, leaf_name = path.split(".")
    for name in parents:
        message = getattr(message, name)
    field = message.DESCRIPTOR.fields_by_name[leaf_name]
    try:
        if field.message_type is not None and is_well_known(field.message_type):
            # A Timestamp, Duration or FieldMask is one JSON string in the JSON mapping.
            json_format.ParseDict(values[-1], getattr(message, leaf_name))
        elif field.is_repeated:
            getattr(message, leaf_name).extend(scalar_from_string(field, v) for v in values)
        else:
            setattr(message, leaf_name, scalar_from_string(field, values[-1]))
    except (ValueError, json_format.ParseError) as exc:
        errors.setdefault(path, []).append(str(exc))


def _set_header(
    message: Message, field: FieldDescriptor, header: str, value: str, errors: FieldErrors
) -> None:
    if header.lower() in preconditions.CONDITION_HEADERS:
        preconditions.fill_version_match(getattr(message, field.name), header, value)
        return
    try:
        setattr(message, field.name, scalar_from_string(field, value))
    except ValueError as exc:
        errors.setdefault(header, []).append(str(exc))


def _infer_update_mask(message: Message, body_field: str, body: dict[str, Any]) -> None:
    """PATCH semantics as grpc-gateway has them: the fields present in the body change."""
    mask_field = message.DESCRIPTOR.fields_by_name.get("update_mask")
    if mask_field is None or mask_field.message_type.full_name != "google.protobuf.FieldMask":
        return
    if message.HasField("update_mask"):
        return  # the client named the fields itself (?update_mask=...)
    target = message.DESCRIPTOR.fields_by_name[body_field].message_type
    message.update_mask.paths.extend(_json_paths(body, target, ""))


def _json_paths(body: dict[str, Any], descriptor: Descriptor, prefix: str) -> list[str]:
    paths = []
    for key, value in body.items():
        field = descriptor.fields_by_name[key]  # unknown keys were refused already
        nested = field.message_type
        if isinstance(value, dict) and nested and not is_well_known(nested) and value:
            paths.extend(_json_paths(value, nested, f"{prefix}{key}."))
        else:
            paths.append(prefix + key)
    return paths


# --- response -------------------------------------------------------------------------


def build_response(route: Route, reply: Message) -> Response:
    headers = {}
    for field in reply.DESCRIPTOR.fields:
        header = options.http_header(field)
        if header and not (field.has_presence and not reply.HasField(field.name)):
            headers[header] = _header_value(header, getattr(reply, field.name))
    try:
        preconditions.check_response(route, reply)
    except preconditions.NotModified:
        return Response(status=304, headers=headers)  # RFC 9110 section 15.4.5: with the ETag
    if route.returns_empty:
        return Response(status=route.success_status, headers=headers)
    body = json.dumps(message_to_json(reply))
    return Response(body, status=route.success_status, headers=headers, mimetype="application/json")


def _header_value(header: str, value: Any) -> str:
    if header.lower() == "etag":
        return f'"{value}"'  # RFC 9110: an entity tag is a quoted string
    return str(value)
