"""Every error the edge answers, as RFC 9457 problem details (application/problem+json).

Backend failures arrive as gRPC statuses with google.rpc details (ErrorInfo, BadRequest,
RetryInfo); edge failures (routing, size, content type, JSON, limits) as Werkzeug
HTTP exceptions. Both end in the same body, and neither ever carries a stack trace.
Whatever else leaves the app with a status of 300 or more (Werkzeug's routing redirects,
an extension's HTML error) is turned into a problem on its way out; the HTTP server
itself is configured to leave those answers to the app (edge_api.server).
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

import grpc
from flask import Flask, Response, g, json
from grpc_status import rpc_status
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from common.errors import read_details
from edge_api.json_codec import FieldErrors, InvalidFields

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
GENERIC_DETAIL = "The server could not complete the request."
# Seconds a client is asked to wait after a 503 whose backend gave no RetryInfo.
UNAVAILABLE_RETRY_AFTER = "1"

# The grpc-gateway table (grpc.md).
GRPC_TO_HTTP = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# ErrorInfo reasons whose HTTP status is more precise than their gRPC code's.
REASON_TO_HTTP = {
    "VERSION_MISMATCH": 412,  # FAILED_PRECONDITION on If-Match
    "IDEMPOTENCY_KEY_REUSED": 422,  # rest-contract.md: same key, different body
    # FAILED_PRECONDITION of the resource's state (AIP-193), a conflict in HTTP terms.
    "PROJECT_NOT_EMPTY": 409,
    "LAST_OWNER": 409,
    "PROJECT_ARCHIVED": 409,
}
# Codes whose message the services write for the client. The others come from the
# transport or from a failure the client cannot act on (and may name internal hosts),
# so they get a generic sentence instead.
_CLIENT_MESSAGES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
}
_GENERIC_DETAILS = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "The service did not answer in time.",
    grpc.StatusCode.UNAVAILABLE: "The service is temporarily unavailable; try again later.",
    grpc.StatusCode.UNIMPLEMENTED: "This operation is not available.",
    grpc.StatusCode.CANCELLED: "The request was cancelled.",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: FieldErrors | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code or _title(status).upper().replace(" ", "_"),
        "request_id": g.get("request_id", ""),
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", "Bearer")
    return response


def _title(status: int) -> str:
    if status == 499:
        return "Client Closed Request"  # nginx's name; not in the IANA registry
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def from_rpc_error(error: grpc.RpcError) -> Response:
    # A failed call of a sync stub is a grpc.Call; an aio stub's is an AioRpcError, which
    # is no grpc.Call but answers the same methods (code, details, trailing_metadata).
    is_call = isinstance(error, (grpc.Call, grpc.aio.AioRpcError))
    code = error.code() if is_call else grpc.StatusCode.UNKNOWN
    status = GRPC_TO_HTTP.get(code, 500)
    details = read_details(rpc_status.from_call(error) if is_call else None)
    reason, field_errors, headers = details.reason or None, _relative_to_body(details.fields), {}
    if details.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(details.retry_after)))
    elif status == 503:  # a backend that is away says nothing itself (RFC 9110 section 10.2.3)
        headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    if code in _CLIENT_MESSAGES:
        status = REASON_TO_HTTP.get(reason or "", status)
        detail_text = error.details() or _title(status)
    else:
        log.warning("backend call failed: %s %s", code, error.details())
        detail_text = _GENERIC_DETAILS.get(code, GENERIC_DETAIL)
        reason = None  # an internal reason is no stable contract for clients
    return problem(status, detail_text, code=reason, errors=field_errors, headers=headers)


def _relative_to_body(fields: FieldErrors) -> FieldErrors:
    """A service names a field from its request message ("task.title"); a REST client
    sent only the body field's content, so the problem names it from there ("title"),
    as the edge's own body errors do, and a field it sent as a header by the header
    ("request_id" -> "Idempotency-Key"). `g.body_field` is the route's body binding,
    `g.header_fields` its header bindings (request field name -> header)."""
    body, headers = g.get("body_field", ""), g.get("header_fields", {})
    prefix = "" if body in ("", "*") else body + "."
    return {headers.get(name) or name.removeprefix(prefix): texts for name, texts in fields.items()}


# What an HTTPException's own headers may add to its problem: 405's Allow, 429's and 503's
# Retry-After, 415's Accept-Encoding (RFC 9110 sections 10.2.1, 10.2.3, 12.5.3).
_KEPT_HEADERS = ("allow", "retry-after", "accept-encoding")


_STOCK_DETAILS = {
    NotFound: "No resource at this path: the API's paths are listed at /swagger.json.",
    MethodNotAllowed: "This path does not take this method: the Allow header lists those it takes.",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        if error.response is not None:
            return error.response  # already a problem (the rate limiter builds its own)
        headers = {name: value for name, value in error.get_headers() if name.lower() in _KEPT_HEADERS}
        # Werkzeug's stock sentences speak to a person at a browser ("If you entered the
        # URL manually please check your spelling"); the edge says what the API means.
        detail = _STOCK_DETAILS.get(type(error)) if error.description == type(error).description else None
        return problem(error.code or 500, detail or error.description or _title(500), headers=headers)

    @app.after_request
    def _every_answer_a_problem(response: Response) -> Response:
        # The one net for what no handler sees: Werkzeug's routing redirects (they bypass
        # error handlers) and any HTML or text error a view or an extension returns.
        # Changed in place, so headers set by other hooks (CORS, request id) stay.
        status = response.status_code
        if status < 300 or status == 304 or response.mimetype == PROBLEM_JSON:
            return response
        location = response.headers.get("Location")
        detail = f"This resource is at {location}." if location else _title(status)
        body = problem(status, detail)
        response.set_data(body.get_data())
        response.mimetype = PROBLEM_JSON
        return response

    @app.errorhandler(EdgeProblem)
    def _edge_problem(error: EdgeProblem) -> Response:
        return problem(error.status, error.detail, code=error.code, errors=error.errors)

    @app.errorhandler(InvalidFields)
    def _invalid_fields(error: InvalidFields) -> Response:
        return problem(400, "The request has invalid fields.", code="INVALID_ARGUMENT", errors=error.errors)

    @app.errorhandler(grpc.RpcError)
    def _rpc_error(error: grpc.RpcError) -> Response:
        return from_rpc_error(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, GENERIC_DETAIL)


class EdgeProblem(Exception):
    """A request the edge refuses itself, before any backend sees it."""

    def __init__(self, status: int, detail: str, code: str, errors: FieldErrors | None = None):
        super().__init__(detail)
        self.status, self.detail, self.code, self.errors = status, detail, code, errors
