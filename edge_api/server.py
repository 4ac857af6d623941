"""The edge's HTTP server: granian (Rust, hyper), the Flask app behind edge_api.rsgi_bridge.

Chosen by measurement (bench/edge_wsgi.py, bench/README.md). A slow client must hold
nothing but its connection: granian reads each request's head in Rust, and the bridge
reads its body on the worker's event loop, so the app runs only a request that has fully
arrived. Under gunicorn gthread about 16 clients sending their headers slowly held every
thread and froze the edge, /healthz included; under granian's own WSGI interface 16
clients sending their bodies slowly did the same. Now 200 of either change nothing
(tests/system/test_slow_clients.py).

Each worker runs the app on its event loop (uvloop), in a greenlet per request that
waits there while its gRPC call is in flight: no pool of WSGI threads, no hand-off
between threads (edge_api.rsgi_bridge says how and why).

Limits: the server's are set above the app's, so the app answers nearly every oversized
request itself, as problem+json (edge_api.request_head): a request head up to
HTTP1_MAX_HEAD_BYTES reaches the app, which refuses a URI over 8 KiB (414) or a header
section over 16 KiB (431). Only what hyper cannot frame as an HTTP request at all (a
broken request line, an illegal header name, more than 100 header fields, a URI over
65,534 bytes, a head larger than HTTP1_MAX_HEAD_BYTES) is answered by hyper itself: a
status (400, 414, 431) and no body. hyper offers no hook to write those answers.

Workers are processes sharing one listening socket; each builds the app after it starts
(`worker_app`), so gRPC channels are never carried across a fork. SIGTERM: the edge goes
on serving for GRPC_SHUTDOWN_DRAIN_SECONDS (the services' drain, same reason: a load
balancer still sends requests until it notices), then the workers stop accepting, finish
the requests in flight and exit; one still busy after GRACEFUL_SECONDS is killed. Without
the drain, hyper closed keep-alive connections whose next request was already on its way.
A second SIGTERM or SIGINT stops at once.
"""
from __future__ import annotations

import threading

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from common.heap import freeze_startup_objects
from common.logging import configure_logging
from common.settings import Settings, load_settings
from edge_api.app import create_app
from edge_api.rsgi_bridge import RSGIBridge

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


def worker_app() -> RSGIBridge:
    """The app of one worker: granian calls it in each worker process as it starts."""
    settings = load_settings()
    configure_logging("edge_api", settings.log_level)
    bridge = RSGIBridge(create_app(settings), max_body_bytes=settings.max_body_bytes)
    freeze_startup_objects()
    return bridge


class DrainingServer(Server):
    """granian's server, which keeps serving for `drain_seconds` after the first SIGTERM."""

    def __init__(self, *args, drain_seconds: float = 0.0, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.drain_seconds = drain_seconds
        self._drain: threading.Timer | None = None

    def signal_handler_interrupt(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self._drain is not None or not self.drain_seconds:
            super().signal_handler_interrupt(*args, **kwargs)  # the second signal: now
            return
        self._drain = threading.Timer(self.drain_seconds, super().signal_handler_interrupt)
        self._drain.daemon = True
        self._drain.start()


def build_server(settings: Settings) -> Server:
    """A granian server for the edge: EDGE_HOST:EDGE_PORT, WEB_CONCURRENCY worker processes,
    each running the app on its event loop (the bridge's), no access log (the app writes
    its own)."""
    return DrainingServer(
        "edge_api.server:worker_app",
        drain_seconds=settings.grpc_shutdown_drain_seconds,
        address=settings.edge_host,
        port=settings.edge_port,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,  # the bridge's event loop, the app's too: measured cheaper than asyncio's own
        factory=True,
        workers=settings.edge_workers,
        websockets=False,
        # HTTP/1.1 only: the limits above are HTTP/1's; granian's HTTP/2 would take 16 MiB
        # header lists and 200 streams per connection. Proxies in front speak HTTP/1.1 to it.
        http=HTTPModes.http1,
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
