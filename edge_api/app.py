"""The app factory: routes from the contracts, errors, limits, CORS, docs and operations."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

import grpc
from flask import Flask, Response, g, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from common.context import client_ip_var, request_id_var
from common.rate_limits import MethodRateLimits
from common.settings import Settings, load_settings
from edge_api import asyncapi, openapi
from edge_api.authn import EdgeAuthenticator
from edge_api.backends import Backends
from edge_api.contract import Contract
from edge_api.errors import register_error_handlers
from edge_api.limits import limited
from edge_api.ops import register_ops
from edge_api.request_head import register_request_head_rules
from edge_api.transcoder import make_view, register_routes

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Headers a browser client sends or reads across origins (when CORS is on).
_CORS_ALLOW_HEADERS = [
    "Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-Id"
]
_CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "X-Request-Id", "WWW-Authenticate"]


class _EdgeFlask(Flask):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):  # noqa: ANN001, ANN201
        """Flask's, decided once per function: Flask asks `inspect` anew for every hook
        and view of every request (eight times per request here, each hook once)."""
        sync = self._sync.get(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync

    def make_default_options_response(self) -> Response:
        """OPTIONS: 204 with Allow, no body and no media type (RFC 9110 sections 9.3.7,
        15.3.5); Flask's own is a 200 with an empty text/html body."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def create_app(
    settings: Settings | None = None,
    channels: Mapping[str, grpc.Channel] | None = None,
    contract: Contract | None = None,
    authenticator: EdgeAuthenticator | None = None,
) -> Flask:
    """`channels` ("user", "task", ... -> channel) replace the addresses from settings;
    `contract` replaces the taskmgr protos (tests expose a proto of their own);
    `authenticator` replaces the token check against user_svc's keys."""
    settings = settings or load_settings()
    contract = contract or Contract.default()
    routes = contract.routes()
    backends = Backends(
        {route.backend for route in routes},
        {
            "user": settings.user_svc_addr,
            "task": settings.task_svc_addr,
            "notify": settings.notify_svc_addr,
        },
        deadline=settings.edge_grpc_deadline,
        channels=channels,
    )

    if authenticator is None:
        authenticator = (
            EdgeAuthenticator.from_user_svc(backends, settings)
            if "user" in backends.names
            else EdgeAuthenticator.header_only()
        )

    app = _EdgeFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # larger bodies: 413
    # Vouches for the client's address to the services (common.client_ip).
    app.config["TASKMGR_CLIENT_IP_KEY"] = settings.secret("internal_key")
    if settings.trusted_proxy_count:
        # remote_addr becomes the address the last trusted proxy saw (the right hop).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count)

    _register_request_id(app)
    app.after_request(_storage_and_sniffing_headers)
    register_request_head_rules(app)
    register_ops(app, backends)  # first: its timer must see every request
    rate_limits = MethodRateLimits(settings.rate_limits, settings.ratelimit_storage_uri)
    views = {}
    for route in routes:
        view = make_view(route, backends, authenticator.check)
        # The operator's limit, else the contract's; a route without one runs no limiter.
        if rate_limits.limit_of(route.grpc_path):
            view = limited(view, rate_limits, route, authenticator.check)
        views[route.endpoint] = view
    register_routes(app, routes, views)
    register_error_handlers(app)
    openapi.register_docs(app, openapi.build_document(routes, contract.comments))
    asyncapi.register_document(app, asyncapi.default_document(settings))
    if settings.cors_origins:
        CORS(
            app,
            origins=settings.cors_origins,
            allow_headers=_CORS_ALLOW_HEADERS,
            expose_headers=_CORS_EXPOSE_HEADERS,
        )
        app.after_request(_vary_on_cors_request_headers)
    return app


def _register_request_id(app: Flask) -> None:
    @app.before_request
    def _take_request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        # Read by the JSON log formatter (common.logging) for this request's log lines.
        request_id_var.set(g.request_id)
        client_ip_var.set(request.remote_addr or "")

    @app.after_request
    def _return_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.request_id
        return response


def _storage_and_sniffing_headers(response: Response) -> Response:
    """Every answer under /api/ is one user's data or credentials: `Cache-Control:
    no-store` (RFC 9111 section 5.2.2.5; the token endpoints must say it, RFC 6749
    section 5.1; OWASP ASVS v4 8.2.1). Every answer: `X-Content-Type-Options: nosniff`, so
    no browser reads a JSON or problem body as HTML or script (Fetch standard, 3.5)."""
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _vary_on_cors_request_headers(response: Response) -> Response:
    """With CORS on, every answer depends on the request's Origin (it is echoed in
    Access-Control-Allow-Origin, or left out for an origin not allowed), and a preflight's
    on the method and headers it asks for: a shared cache must key on them (RFC 9110
    section 12.5.5, Fetch standard section 3.2.5). flask-cors adds `Vary: Origin` only
    when several origins are configured and the origin is allowed."""
    response.vary.add("Origin")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.vary.update(("Access-Control-Request-Method", "Access-Control-Request-Headers"))
    return response
