"""Operational endpoints: /healthz (alive), /readyz (backends' gRPC health), /metrics."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from edge_api.backends import Backends
from edge_api.errors import problem

access_log = logging.getLogger("edge_api.access")


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


def _register_metrics(app: Flask) -> None:
    # One registry per app, so tests can build many apps in one process. Under gunicorn
    # with PROMETHEUS_MULTIPROC_DIR set, prometheus_client writes every worker's values
    # to files there and /metrics adds them up, whichever worker answers the scrape.
    registry = CollectorRegistry()
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
        # The rule template, not the URL, so ids do not explode the label set.
        rule = request.url_rule.rule.rstrip("/") or "/" if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.started
        requests.labels(request.method, rule, str(response.status_code)).inc()
        latency.labels(request.method, rule).observe(elapsed)
        # The access log line: the route template, never the query string or headers,
        # which may hold tokens or personal data.
        access_log.info("%s %s %d %.1fms", request.method, rule, response.status_code, elapsed * 1000)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(scrape)
        else:
            scrape = registry
        return Response(generate_latest(scrape), mimetype=CONTENT_TYPE_LATEST)
