"""The OpenAPI 3.0.3 document, generated from the same Routes the transcoder serves.

Schemas follow the JSON conventions of edge_api.json_codec (integers for int64,
lower-case enum strings, null for unset optional and message fields); descriptions
are the proto comments; request and response shapes, limits and examples come from the
contract (edge_api.schemas). Version 3.0.3 because flasgger's Swagger UI cannot render
3.1, hence `nullable: true` rather than type unions.

Every status an operation can answer is documented, derived from what the contract
says of it (see `_errors`), so a typed client has a model for each and schemathesis can
hold the server to the list.
"""

from __future__ import annotations

import re
from typing import Any

from flasgger import Swagger
from flask import Flask
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from common.contract_rules import is_required
from edge_api import options
from edge_api.contract import Route
from edge_api.schemas import Schema, Schemas

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Not Found"},
        "status": {"type": "integer", "example": 404},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable reason."},
        "errors": {
            "type": "object",
            "description": "Messages per field at fault.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}
# Error responses, by status: (component name, description, response headers).
_ERRORS: dict[str, tuple[str, str, dict[str, str]]] = {
    "304": ("NotModified", "If-None-Match matched the current version: no body.", {"ETag": "The version."}),
    "400": ("BadRequest", "Invalid parameters, body or field values.", {}),
    "401": (
        "Unauthorized",
        "Missing, invalid or expired access token.",
        {"WWW-Authenticate": "The authentication scheme: Bearer."},
    ),
    "403": ("Forbidden", "The caller may not do this.", {}),
    "404": ("NotFound", "No such resource, or the caller may not see it.", {}),
    "409": ("Conflict", "Conflicts with the current state (e.g. a duplicate).", {}),
    "412": ("PreconditionFailed", "If-Match or If-None-Match does not hold (RFC 9110 section 13.1).", {}),
    "413": ("ContentTooLarge", "The body is larger than 64 KiB.", {}),
    "414": ("UriTooLong", "The request target is longer than the edge accepts (8 KiB).", {}),
    "415": ("UnsupportedMediaType", "The body is not application/json, or is content-coded.", {}),
    "422": ("UnprocessableContent", "Idempotency-Key reused with a different body.", {}),
    "431": ("HeadersTooLarge", "The request's headers are larger than the edge accepts.", {}),
    "429": (
        "TooManyRequests",
        "Rate limited or overloaded; retry later.",
        {"Retry-After": "Seconds to wait before retrying."},
    ),
    "503": (
        "ServiceUnavailable",
        "A service the answer needs is away; retry later.",
        {"Retry-After": "Seconds to wait before retrying."},
    ),
    "default": ("UnexpectedError", "A server or backend failure (5xx).", {}),
}
# RFC 9110 section 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE.
ENTITY_TAG = r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"'
# If-Match / If-None-Match = "*" / #entity-tag (RFC 9110 sections 13.1.1 and 13.1.2).
_TAG_LIST = rf"^(\*|{ENTITY_TAG}(\s*,\s*{ENTITY_TAG})*)$"
# No examples: Swagger UI would send them with every "Try it out" (a 412 or a 304).
_HEADER_SCHEMAS: dict[str, Schema] = {
    "if-match": {"type": "string", "pattern": _TAG_LIST},
    "if-none-match": {"type": "string", "pattern": _TAG_LIST},
    "etag": {"type": "string", "pattern": rf"^{ENTITY_TAG}$"},
}


def build_document(routes: list[Route], comments: dict[str, str]) -> dict[str, Any]:
    schemas = Schemas(comments)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        operation = _operation(route, schemas, comments)
        # Two services with one method name, or an RPC with additional_bindings: the
        # service names the operation, then a suffix keeps each id unique.
        if operation["operationId"] in operation_ids:
            operation["operationId"] = _snake(f"{route.service.name}_{route.method.name}")
        while operation["operationId"] in operation_ids:
            operation["operationId"] += "_"
        operation_ids.add(operation["operationId"])
        paths.setdefault(_openapi_path(route), {})[route.verb.lower()] = operation
    services = {route.service.full_name: route.service for route in routes}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "taskmgr",
            "version": "1.0.0",
            "description": "Generated from the proto contracts (google.api.http annotations).",
        },
        # Relative to where the document was fetched (OpenAPI 3.0.3 section 4.7.5).
        "servers": [{"url": "/", "description": "This server"}],
        "tags": [
            {"name": s.name, "description": comments.get(full_name, "")}
            for full_name, s in sorted(services.items())
        ],
        "paths": paths,
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Problem": PROBLEM_SCHEMA, **schemas.components},
            "responses": {
                name: _error_response(name, text, headers) for name, text, headers in _ERRORS.values()
            },
        },
    }


def register_docs(app: Flask, document: dict[str, Any]) -> None:
    """Swagger UI at /swagger/ and the document at /swagger.json. flasgger serves the
    document given as its template; its own scan of the views is switched off
    (rule_filter) because the document is already complete. The page loads nothing from
    other hosts (edge_api/templates/flasgger/head.html drops flasgger's web fonts)."""
    Swagger(
        app,
        template=document,
        config={
            "openapi": "3.0.3",
            "uiversion": 3,
            "title": "taskmgr API",
            "headers": [],
            "specs": [
                {
                    "endpoint": "swagger_json",
                    "route": "/swagger.json",
                    "rule_filter": lambda rule: False,
                    "model_filter": lambda tag: False,
                }
            ],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/swagger/",
            # Rendered verbatim into the page's script as `initOAuth(<auth>)`: unset, it
            # became the Python `None` there (ReferenceError). No OAuth flow: empty.
            "auth": {},
        },
    )


# --- operations -----------------------------------------------------------------------


def _operation(route: Route, schemas: Schemas, comments: dict[str, str]) -> dict[str, Any]:
    description = comments.get(route.method.full_name, "")
    operation: dict[str, Any] = {
        "operationId": _snake(route.method.name),
        "tags": [route.service.name],
        "summary": description.split(". ")[0].rstrip(".") if description else route.method.name,
        "description": description,
        "parameters": _parameters(route, schemas),
        "responses": {**_success(route, schemas), **_errors(route)},
    }
    if route.body:
        operation["requestBody"] = _request_body(route, schemas)
    if route.public:
        operation["security"] = []  # no token needed
    if route.rate_limit:
        who = "client IP" if route.public else "user"  # common.rate_limits.counted_as
        operation["description"] += f"\n\nRate limit per {who}: {route.rate_limit}."
    return operation


def _path_parameter_names(route: Route) -> dict[str, str]:
    """Each path variable's parameter name: its leaf field (`task.id` -> `id`), unless two
    variables of the route share a leaf. OpenAPI holds `/tasks/{id}/` and `/tasks/{task.id}/`
    to be one path that must not appear twice, and tools reject a dotted parameter name."""
    leaves = [variable.path.rsplit(".", 1)[-1] for variable in route.path_variables]
    return {
        variable.path: leaf if leaves.count(leaf) == 1 else variable.rule_name
        for variable, leaf in zip(route.path_variables, leaves, strict=True)
    }


def _openapi_path(route: Route) -> str:
    names = _path_parameter_names(route)
    # {task.id} -> {id}, {name=*} -> {name}
    return re.sub(r"\{([^}=]+)(?:=[^}]*)?\}", lambda match: "{" + names[match[1]] + "}", route.template)


def _parameters(route: Route, schemas: Schemas) -> list[dict[str, Any]]:
    names = _path_parameter_names(route)
    bindings = [
        *((names[v.path], "path", schemas.query(v.field), v.field) for v in route.path_variables),
        *((name, "query", schemas.query(f), f) for name, f in route.query_fields.items()),
        *((name, "header", _header_schema(name, f, schemas), f) for name, f in route.header_fields.items()),
    ]
    parameters = []
    for name, location, schema, field in bindings:
        parameter = {"name": name, "in": location, "required": location == "path"}
        parameter["schema"] = schema
        if schemas.description(field):
            parameter["description"] = schemas.description(field)
        parameters.append(parameter)
    return parameters


def _header_schema(name: str, field: FieldDescriptor, schemas: Schemas) -> Schema:
    """What the server accepts in the header: its HTTP grammar for a standard header,
    else the bound field's value with its rules."""
    return dict(_HEADER_SCHEMAS.get(name.lower()) or schemas.query(field))


def _request_body(route: Route, schemas: Schemas) -> dict[str, Any]:
    request = route.method.input_type
    if route.body == "*":
        bound = {v.path.split(".")[0] for v in route.path_variables}
        bound |= {f.name for f in route.header_fields.values()}
        schema = schemas.input_ref(request, exclude=frozenset(bound))
        required = any(is_required(f) for f in request.fields if f.name not in bound)
    else:
        field = request.fields_by_name[route.body]
        schema, required = schemas.input_value(field), is_required(field)
        if route.verb == "PATCH" and field.message_type is not None:
            schema = schemas.input_ref(field.message_type, partial=True)  # any subset of the fields
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _success(route: Route, schemas: Schemas) -> dict[str, Any]:
    output = route.method.output_type
    response: dict[str, Any] = {"description": schemas.comments.get(output.full_name) or "OK"}
    if not route.returns_empty:
        response["content"] = {"application/json": {"schema": schemas.ref(output)}}
    headers = {
        options.http_header(f): {
            "schema": _header_schema(options.http_header(f), f, schemas),
            "description": schemas.description(f),
        }
        for f in output.fields
        if options.http_header(f)
    }
    if headers:
        response["headers"] = headers
    return {str(route.success_status): response}


def _errors(route: Route) -> dict[str, Any]:
    """The error statuses this operation can answer, and only those, derived from what
    the contract says of it: every operation can be refused (400; 414 and 431 for a
    request target or headers past the edge's limits), limited (429) or find a service
    away (503); a token is checked unless it is public, and so is a field
    marked `(taskmgr.api.v1.credential)` (a password, a refresh token), even on a public
    method (401); a body may be refused or conflict; a path names a resource that may
    be missing; precondition headers fail with 412 (304 for a GET's If-None-Match)."""
    headers = {header.lower() for header in route.header_fields}
    statuses = ["400", "414", "429", "431", "503", "default"]
    if not route.public:
        statuses += ["401", "403"]
    if _checks_credential(route.method.input_type, set()):
        statuses.append("401")
    if route.body:
        statuses += ["403", "409", "413", "415"]  # refused actions, conflicts, body checks
    if route.path_variables:
        statuses.append("404")
    if route.verb != "GET":
        statuses.append("409")
    if "if-match" in headers:
        statuses.append("412")
    if "if-none-match" in headers:
        statuses.append("304" if route.verb == "GET" else "412")
    if "idempotency-key" in headers:
        statuses.append("422")
    return {
        status: {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
        for status in sorted(set(statuses), key=lambda s: (s == "default", s))
    }


def _checks_credential(message: Descriptor, seen: set[str]) -> bool:
    seen.add(message.full_name)
    return any(
        options.is_credential(f)
        or (f.message_type is not None and f.message_type.full_name not in seen
            and _checks_credential(f.message_type, seen))
        for f in message.fields
    )


def _snake(name: str) -> str:
    """ListTasks -> list_tasks: the method names typed clients generate from it."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _error_response(name: str, description: str, headers: dict[str, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if name != "NotModified":  # RFC 9110 section 15.4.5: a 304 has no content
        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()
        }
    return response
