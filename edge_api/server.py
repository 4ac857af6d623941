"""The edge's HTTP server: granian (Rust, hyper) running the Flask app as WSGI.

Chosen by measurement (bench/edge_wsgi.py, bench/README.md): granian reads and parses
every request in Rust and hands a Python thread only a complete request, so a client that
sends its headers slowly holds no thread. Under gunicorn gthread about 16 such clients
held every thread and froze the edge, /healthz included; under granian 200 of them change
nothing (tests/system/test_slow_clients.py). It also costs less CPU per request.

Limits: the server's are set above the app's, so the app answers nearly every oversized
request itself, as problem+json (edge_api.limits_http): a request head up to
HTTP1_MAX_HEAD_BYTES reaches the app, which refuses a URI over 8 KiB (414) or a header
section over 16 KiB (431). Only what hyper cannot frame as an HTTP request at all (a
broken request line, an illegal header name, more than 100 header fields, a URI over
65,534 bytes, a head larger than HTTP1_MAX_HEAD_BYTES) is answered by hyper itself: a
status (400, 414, 431) and no body. hyper offers no hook to write those answers.

Workers are processes sharing one listening socket; each builds the app after it starts
(`worker_app`), so gRPC channels are never carried across a fork. SIGTERM: the workers
stop accepting, finish the requests in flight and exit; one still busy after
GRACEFUL_SECONDS is killed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from common.logging import configure_logging
from common.settings import Settings, load_settings
from edge_api.app import create_app

GRACEFUL_SECONDS = 10  # tests/system/test_graceful_shutdown.py: exit within this after SIGTERM
# A client has this long to send a request's whole head (the request line and headers)
# once it starts one; a slow one is then dropped. No thread waits on it meanwhile.
HEADER_READ_TIMEOUT_MS = 10_000
# hyper's own answer (431, no body) only above this; the app's limits are far below it.
HTTP1_MAX_HEAD_BYTES = 256 * 1024
# granian's own log lines go to the root logger, i.e. the service's JSON handler.
_GRANIAN_LOGGING = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    }
}


# Keys of a WSGI environ that granian sets itself for every request.
_REQUEST_KEYS = frozenset(
    {"SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REQUEST_METHOD", "PATH_INFO",
     "QUERY_STRING", "GATEWAY_INTERFACE", "SCRIPT_NAME", "SERVER_SOFTWARE"}
)  # fmt: skip
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def worker_app() -> Flask:
    """The WSGI app of one worker: granian calls it in each worker process as it starts."""
    settings = load_settings()
    configure_logging("edge_api", settings.log_level)
    app = create_app(settings)
    app.wsgi_app = without_process_environment(app.wsgi_app)
    return app


def without_process_environment(wsgi_app: WSGIApp, environment: dict[str, str] | None = None) -> WSGIApp:
    """Removes from each request's WSGI environ what granian copies into it from the
    process environment (`os.environ`, or `environment`).

    granian starts every environ from the process's variables: an `HTTP_PROXY` set for
    the process would reach the app as a `Proxy` request header on every request, a
    `CONTENT_TYPE` as the type of a request that sent none, and secrets would sit in
    every environ. A request's own value wins only where it differs from the process's."""
    inherited = {
        key: value
        for key, value in (os.environ if environment is None else environment).items()
        if key not in _REQUEST_KEYS
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key, value in inherited.items():
            if environ.get(key) == value:
                del environ[key]
        return wsgi_app(environ, start_response)

    return app


def build_server(settings: Settings) -> Server:
    """A granian server for the edge: EDGE_HOST:EDGE_PORT, WEB_CONCURRENCY worker processes
    with EDGE_THREADS Python threads each, no access log (the app writes its own)."""
    return Server(
        "edge_api.server:worker_app",
        address=settings.edge_host,
        port=settings.edge_port,
        interface=Interfaces.WSGI,
        factory=True,
        workers=settings.edge_workers,
        blocking_threads=settings.edge_threads,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS,
            keep_alive=True,
            max_buffer_size=HTTP1_MAX_HEAD_BYTES,
        ),
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=_GRANIAN_LOGGING,
        log_access=False,
        workers_kill_timeout=GRACEFUL_SECONDS,
    )
