"""Operational endpoints and metrics.

Public port: /healthz (alive) and /readyz (backends' gRPC health). Metrics are never
served there: `start_metrics_server` serves them from the launching process on the
operators' port (EDGE_METRICS_HOST:EDGE_METRICS_PORT, reached by the cluster's scraper
only; neither the Ingress nor compose expose it).

Several edge workers (whatever the WSGI server: gunicorn, granian ...) each count in
their own process; prometheus_client's multiprocess mode has every worker write its
values to files in PROMETHEUS_MULTIPROC_DIR, and the metrics server, in the launching
process, adds them up. Label values come from allow-lists only (HTTP method, route
template, status code), so no request can add a series (OWASP ASVS v4 11.1.4, resource
exhaustion).
"""

from __future__ import annotations

import http
import logging
import threading
import time
from wsgiref.simple_server import WSGIServer

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server, values

from common.metrics import prepare_multiprocess_dir
from common.settings import Settings
from edge_api.backends import Backends
from edge_api.errors import problem
from edge_api.request_head import METHODS  # anything else is counted as "OTHER"

access_log = logging.getLogger("edge_api.access")

REGISTRY_EXTENSION = "taskmgr.metrics"
# The IANA-registered status codes Python knows; anything else is counted as "other".
STATUSES = frozenset(str(status.value) for status in http.HTTPStatus)
UNMATCHED_ROUTE = "unmatched"


def register_ops(app: Flask, backends: Backends) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        down = backends.unhealthy()
        if down:
            names = ", ".join(f"{name} ({state})" for name, state in sorted(down.items()))
            return problem(503, f"Backends not serving: {names}.", code="BACKEND_DOWN")
        return jsonify(status="ok", backends=backends.names)

    _register_metrics(app)


def metric_labels(method: str, rule: str | None, status: int) -> tuple[str, str, str]:
    """(method, route, status) labels: each from an allow-list, whatever the request held.

    `rule` is the matched URL rule's template (finite: the app's routes), never the path."""
    method = method if method in METHODS else "OTHER"
    route = (rule.rstrip("/") or "/") if rule else UNMATCHED_ROUTE
    code = str(status)
    return method, route, code if code in STATUSES else "other"


def _register_metrics(app: Flask) -> None:
    # A worker forked from a launcher that imported prometheus_client before
    # PROMETHEUS_MULTIPROC_DIR was set inherits the single-process value class: choose
    # again, here in the worker, before any metric is made.
    values.ValueClass = values.get_value_class()
    # One registry per app, so tests can build many apps in one process; in multiprocess
    # mode the metrics server reads the files instead.
    registry = CollectorRegistry()
    app.extensions[REGISTRY_EXTENSION] = registry
    requests = Counter(
        "edge_http_requests_total",
        "HTTP requests answered by the edge.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "edge_http_request_duration_seconds",
        "Time to answer an HTTP request, including the gRPC call.",
        ["method", "route"],
        registry=registry,
    )

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule else None
        # The method as sent: request.method is upper-cased, and `get` is no GET (a 501).
        sent = request.environ.get("REQUEST_METHOD", "")
        method, route, status = metric_labels(sent, rule, response.status_code)
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        requests.labels(method, route, status).inc()
        latency.labels(method, route).observe(elapsed)
        # The access log line: the route template, never the query string or headers,
        # which may hold tokens or personal data. As the services log calls: a failed
        # request at INFO, a successful one at DEBUG, so at the shipped INFO level a
        # request that went well costs no formatted record (the metrics above count it).
        level = logging.INFO if response.status_code >= 400 else logging.DEBUG
        if access_log.isEnabledFor(level):
            access_log.log(level, "%s %s %d %.1fms", method, route, response.status_code, elapsed * 1000)
        return response


def start_metrics_server(settings: Settings) -> tuple[WSGIServer, threading.Thread]:
    """Serves GET /metrics (Prometheus text format) on EDGE_METRICS_HOST:EDGE_METRICS_PORT
    from a daemon thread of the calling process: the launcher, before it starts workers.

    The sum over every worker's files in PROMETHEUS_MULTIPROC_DIR is served, whichever
    WSGI server runs them. Stops the process with a clear message when the port is taken."""
    prepare_multiprocess_dir()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        return start_http_server(settings.edge_metrics_port, settings.edge_metrics_host, registry=registry)
    except OSError as exc:
        where = f"{settings.edge_metrics_host}:{settings.edge_metrics_port}"
        message = f"taskmgr edge_api: cannot serve metrics on {where} ({exc.strerror}): set EDGE_METRICS_PORT"
        raise SystemExit(message) from None
