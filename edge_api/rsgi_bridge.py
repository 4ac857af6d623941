"""The Flask (WSGI) app served over granian's RSGI interface, on the worker's event loop.

Under granian's WSGI interface a request's head is read in Rust, but its body is read
by the Python thread running the request, as the app asks for it: a client that sends
its body slowly held a thread for as long as it liked, and about 16 such clients froze
the edge as slow headers did under gunicorn. Here the body is read on the worker's
event loop, where waiting costs nothing, within BODY_READ_TIMEOUT seconds (else 408)
and up to the app's limit plus one chunk (the app answers 413 past its limit, as for any
body; a Content-Length over it is not read at all); only then does the WSGI app run,
with the body in memory.

The app runs on the loop's own thread, in a greenlet per request (edge_api.greenlets):
when it makes its gRPC call (edge_api.backends), the greenlet waits and the loop runs
other requests until the answer is in. Requests interleave only there, never in the
middle of Python code, so the app needs no more thread safety than it had. This
replaced a pool of WSGI threads fed through a queue, each answer handed back to the
loop with call_soon_threadsafe: those hand-offs, the sync gRPC client's waiting and the
threads' GIL contention were about a third of an edge worker's CPU (py-spy under
bench/perf_vs_floor.py). Measured side by side on the same services (one worker, wrk
-c16, rounds alternated), the greenlets took 10-24% less edge CPU per task list and
6-18% less per task, and served 15-35% more requests per second; p99 came out higher in
most rounds, nearly all of it in the await of the gRPC answer. With two workers the list
gained as much and a single task nothing (bench/README.md). The catch:
nothing the app does may block the loop for long without awaiting. The gRPC calls and
/readyz's health checks await; the rare sync calls left (a JWKS fetch from user_svc when
a token names a key not seen yet, a shared rate-limit store such as redis://) hold the
loop, and with it the worker, while they last.

There is no limit on the requests a worker runs at once but granian's own
(backpressure, per worker): a request waiting for a backend costs a suspended greenlet,
not a thread. (Capping them at 8 or 12 with an asyncio.Semaphore, as the thread pool
did, cost CPU and gave no clearly better p99 in the same measurements.)

The environ is what PEP 3333 asks and granian's WSGI interface gave: the path decoded
(UTF-8 bytes as latin-1 code points), headers as HTTP_*, repeated ones joined by ", ".
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from granian.rsgi import ProtocolClosed

from edge_api import greenlets

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
BODY_READ_TIMEOUT = 10.0  # seconds for a whole body, as the server allows for a head


class RSGIBridge:
    """An RSGI application (granian calls `__rsgi__` per request) running `wsgi_app` in a
    greenlet per request on the worker's loop. `max_body_bytes`: the app's limit; more is
    not read."""

    def __init__(self, wsgi_app: WSGIApp, *, max_body_bytes: int) -> None:
        self.wsgi_app = wsgi_app
        self.max_body_bytes = max_body_bytes
        self._base_environ = {
            "SCRIPT_NAME": "",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "granian",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            # Requests interleave (at their gRPC calls), as they would on threads.
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,  # the whole body is in wsgi.input, whatever its framing
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to start: the app runs on `loop` itself, its channels made there on
        first use (edge_api.backends)."""

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to stop: granian lets the requests in flight finish before this."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        environ = self._environ(scope)
        body = b""
        # A request without Content-Length or Transfer-Encoding has no body (RFC 9112
        # section 6.3): most of them, and nothing to wait for.
        if self._has_body_to_read(environ):
            try:
                body = await asyncio.wait_for(self._read_body(protocol), BODY_READ_TIMEOUT)
            except TimeoutError:
                detail = f"The request body did not arrive within {BODY_READ_TIMEOUT:.0f} seconds."
                protocol.response_bytes(*_problem(408, "Request Timeout", detail, close=True))
                return
            except ProtocolClosed:
                return  # the client went away: nobody to answer
        environ["wsgi.input"] = io.BytesIO(body)
        protocol.response_bytes(*await greenlets.run(self._answer, environ))

    def _answer(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """The app's answer to one request (run in its greenlet)."""
        try:
            return self._call(environ)
        except Exception:  # Flask answers its own errors: this is a broken app or bridge
            log.exception("the WSGI app failed outside its error handlers")
            return _problem(500, "Internal Server Error", "The server could not complete the request.")

    def _has_body_to_read(self, environ: dict[str, Any]) -> bool:
        if "HTTP_TRANSFER_ENCODING" in environ:
            return True
        declared = environ.get("CONTENT_LENGTH")
        # A declared length over the limit is answered 413 by the app at once, unread.
        return declared is not None and not (declared.isdigit() and int(declared) > self.max_body_bytes)

    async def _read_body(self, protocol: Any) -> bytes:
        chunks, size = [], 0
        async for chunk in protocol:
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes:
                break  # enough for the app to see the body is too large
        return b"".join(chunks)

    def _environ(self, scope: Any) -> dict[str, Any]:
        environ = dict(self._base_environ)
        server_host, _, server_port = scope.server.rpartition(":")
        environ.update(
            REQUEST_METHOD=scope.method,
            PATH_INFO=scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            QUERY_STRING=scope.query_string,
            SERVER_NAME=server_host.strip("[]"),
            SERVER_PORT=server_port,
            REMOTE_ADDR=scope.client.rpartition(":")[0].strip("[]"),
            SERVER_PROTOCOL=f"HTTP/{scope.http_version}",
        )
        environ["wsgi.url_scheme"] = scope.scheme
        for name, value in scope.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [int(status.split(" ", 1)[0]), headers]

        result = self.wsgi_app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return answer[0], answer[1], payload


def _problem(
    status: int, title: str, detail: str, *, close: bool = False
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An answer the bridge gives itself, in the shape of edge_api.errors.problem. `close`:
    the connection is closed after it (a 408: what is left of the body would otherwise be
    read as the next request, RFC 9110 section 15.5.9)."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": title.upper().replace(" ", "_"),
        "request_id": uuid.uuid4().hex,
    }
    headers = [("content-type", "application/problem+json")]
    if close:
        headers.append(("connection", "close"))
    return status, headers, json.dumps(body).encode()
