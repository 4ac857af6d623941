"""HTTP request -> gRPC request message -> gRPC call -> HTTP response, for any Route.

The bindings come from the contract (edge_api.contract): path variables first set
nothing the body may set again, the body is `*` or one field, the remaining fields come
from the query string, and fields marked with `http_header` from headers. No method
has code of its own here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from flask import Flask, Response, current_app, g, request
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wsgi import get_input_stream

from common import client_ip
from edge_api import explicit_null, options, preconditions, update_mask
from edge_api.backends import Backends
from edge_api.contract import Route
from edge_api.errors import EdgeProblem
from edge_api.json_codec import (
    CONVERSION_ERRORS,
    FieldErrors,
    InvalidFields,
    MalformedJson,
    conversion_problem,
    decode_json,
    is_well_known,
    json_to_message,
    message_to_json_bytes,
    scalar_from_string,
    well_known_from_json,
)

View = Callable[..., Response]
Authenticate = Callable[[Route], None]


def make_view(route: Route, backends: Backends, authenticate: Authenticate) -> View:
    def view(**path_values: str) -> Response:
        authenticate(route)  # 401 before anything in the request is validated
        message = build_request(route, path_values)
        g.body_field = route.body  # errors name fields from the body (edge_api.errors)
        g.header_fields = {field.name: header for header, field in route.header_fields.items()}
        preconditions.check_before_call(route)
        reply = backends.call(route, message, grpc_metadata())
        return build_response(route, reply)

    # One name per route: profiles and tracebacks name the route's view.
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
        for path, problems in explicit_null.missing_fields(route, body).items():
            errors.setdefault(path, []).extend(problems)
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
    if not errors:
        try:
            update_mask.resolve(route, message, body)
        except ValueError as exc:
            errors["update_mask"] = [str(exc)]
    if errors:
        raise InvalidFields(errors)
    return message


def _read_body(route: Route, errors: FieldErrors) -> Any:
    data = _body_bytes(current_app.config["MAX_CONTENT_LENGTH"])
    if not data.strip():
        return {}  # no body at all means no fields, not a wrong content type
    _refuse_content_codings()
    if not request.is_json:
        raise UnsupportedMediaType("The body must be JSON (Content-Type: application/json).")
    try:
        body = decode_json(data)
    except MalformedJson as exc:
        raise EdgeProblem(400, str(exc), "MALFORMED_JSON") from None
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


class UnsupportedContentCoding(UnsupportedMediaType):
    """415 for a body with a content coding (RFC 9110 section 15.5.16), naming the one
    coding the edge reads (section 12.5.3: Accept-Encoding in the answer)."""

    def get_headers(self, environ=None, scope=None):  # noqa: ANN001, ANN201
        return [*super().get_headers(environ, scope), ("Accept-Encoding", "identity")]


def _refuse_content_codings() -> None:
    """The body is the representation after its content codings (RFC 9110 section
    8.4.1); the edge decodes none, so a coded body (gzip, br, ...) would be read as the
    JSON it is not. Raises UnsupportedContentCoding for any coding but `identity`."""
    given = request.headers.get("Content-Encoding", "")
    codings = [coding.strip().lower() for coding in given.split(",")]
    unsupported = [coding for coding in codings if coding and coding != "identity"]
    if unsupported:
        raise UnsupportedContentCoding(
            f"The body must not be content-coded (Content-Encoding: {unsupported[0]}); "
            "send it as plain JSON."
        )


def _body_bytes(limit: int) -> bytes:
    """The request body, at most `limit` bytes; longer is 413 however it is sent.

    Werkzeug refuses a Content-Length over the limit unread, but a chunked body
    (RFC 9112 section 7.1) has no length: its stream just stops at the limit, and the
    body would be silently cut. So one byte past the limit is read: if it comes, the body
    is too long. The stream is Werkzeug's (get_input_stream), bounded by Content-Length or,
    for a chunked body, read from a server that de-chunks it (wsgi.input_terminated, as
    gunicorn and Werkzeug's server set); so this holds under any WSGI server.
    """
    environ = request.environ
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if request.content_length is None and not chunked:
        return b""  # no body: reading a stream with no end in sight could block
    stream = get_input_stream(environ, safe_fallback=False, max_content_length=limit + 1)
    chunks, size = [], 0
    while size <= limit:  # a short Content-Length body: ClientDisconnected, a 400
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    return b"".join(chunks)


def _set_text(message: Message, path: str, values: list[str], errors: FieldErrors) -> None:
    *parents, leaf_name = path.split(".")
    for name in parents:
        message = getattr(message, name)
    field = message.DESCRIPTOR.fields_by_name[leaf_name]
    if len(values) > 1 and not field.is_repeated:
        # Which one counts would be a guess, as with a duplicate name in a JSON body.
        errors.setdefault(path, []).append("given more than once")
        return
    try:
        if field.message_type is not None and is_well_known(field.message_type):
            # A Timestamp, Duration or FieldMask is one JSON string in the JSON mapping.
            well_known_from_json(values[-1], getattr(message, leaf_name))
        elif field.is_repeated:
            getattr(message, leaf_name).extend(scalar_from_string(field, v) for v in values)
        else:
            setattr(message, leaf_name, scalar_from_string(field, values[-1]))
    except CONVERSION_ERRORS as exc:
        errors.setdefault(path, []).append(conversion_problem(exc))


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


# --- response -------------------------------------------------------------------------


def build_response(route: Route, reply: Message) -> Response:
    headers = {}
    for field, header in _header_fields(reply.DESCRIPTOR):
        if not (field.has_presence and not reply.HasField(field.name)):
            headers[header] = _header_value(header, getattr(reply, field.name))
    try:
        preconditions.check_response(route, reply)
    except preconditions.NotModified:
        return Response(status=304, headers=headers)  # RFC 9110 section 15.4.5: with the ETag
    if route.returns_empty:
        response = Response(status=route.success_status, headers=headers)
        del response.headers["Content-Type"]  # no content, no media type (not Flask's text/html)
        return response
    body = message_to_json_bytes(reply)
    return Response(body, status=route.success_status, headers=headers, mimetype="application/json")


@cache
def _header_fields(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, str], ...]:
    """The reply's fields sent as headers (`http_header`), and their headers: read from the
    descriptor's options once per type, not on every answer."""
    return tuple((field, header) for field in descriptor.fields if (header := options.http_header(field)))


def _header_value(header: str, value: Any) -> str:
    if header.lower() == "etag":
        return f'"{value}"'  # RFC 9110: an entity tag is a quoted string
    return str(value)
