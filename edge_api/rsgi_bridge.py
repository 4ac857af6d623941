"""The Flask (WSGI) app served over granian's RSGI interface, its body read before a thread runs it.

Under granian's WSGI interface a request's head is read in Rust, but its body is read
by the Python thread running the request, as the app asks for it: a client that sends
its body slowly held a thread for as long as it liked, and about 16 such clients froze
the edge as slow headers did under gunicorn. Here the body is read on the worker's
event loop, where waiting costs no thread, within BODY_READ_TIMEOUT seconds (else 408)
and up to the app's limit plus one chunk (the app answers 413 past its limit, as for any
body; a Content-Length over it is not read at all); only then does a thread run the WSGI
app, with the body in memory.

The environ is what PEP 3333 asks and granian's WSGI interface gave: the path decoded
(UTF-8 bytes as latin-1 code points), headers as HTTP_*, repeated ones joined by ", ".
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from granian.rsgi import ProtocolClosed

log = logging.getLogger(__name__)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
BODY_READ_TIMEOUT = 10.0  # seconds for a whole body, as the server allows for a head


class RSGIBridge:
    """An RSGI application (granian calls `__rsgi__` per request) running `wsgi_app` on
    `threads` threads. `max_body_bytes`: the app's limit; more is not read."""

    def __init__(self, wsgi_app: WSGIApp, *, threads: int, max_body_bytes: int) -> None:
        self.wsgi_app = wsgi_app
        self.max_body_bytes = max_body_bytes
        self._threads = threads
        self._jobs: queue.SimpleQueue[tuple[dict[str, Any], asyncio.Future] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._base_environ = {
            "SCRIPT_NAME": "",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "granian",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,  # the whole body is in wsgi.input, whatever its framing
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for number in range(self._threads):
            worker = threading.Thread(target=self._work, name=f"wsgi-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()

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
        answered = self._loop.create_future()
        self._jobs.put((environ, answered))
        protocol.response_bytes(*await answered)

    def _work(self) -> None:
        """One thread: runs the requests handed over, each answer handed back to the loop
        with a single wake-up. (run_in_executor's concurrent Future, its chaining onto an
        asyncio Future and the pool's locks were a fifth of the edge's CPU: py-spy under
        bench/perf_vs_floor.py.)"""
        while (job := self._jobs.get()) is not None:
            environ, answered = job
            try:
                answer = self._call(environ)
            except Exception:  # Flask answers its own errors: this is a broken app or bridge
                log.exception("the WSGI app failed outside its error handlers")
                answer = _problem(500, "Internal Server Error", "The server could not complete the request.")
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for it
                self._loop.call_soon_threadsafe(_settle, answered, answer)

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


def _settle(answered: asyncio.Future, answer: tuple[int, list[tuple[str, str]], bytes]) -> None:
    if not answered.done():  # not cancelled meanwhile (the worker stopping)
        answered.set_result(answer)


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
