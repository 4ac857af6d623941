"""edge_api.rsgi_bridge: the WSGI environ it builds, the body it reads first, its 408, and
requests run on the loop side by side, each in its own context."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from flask import Flask, g, request

from common.context import request_id_var
from edge_api import greenlets, rsgi_bridge
from edge_api.rsgi_bridge import RSGIBridge


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return self.pairs


class Scope:
    proto = "http"
    http_version = "1.1"
    scheme = "http"
    server = "127.0.0.1:8000"
    client = "10.1.2.3:50123"

    def __init__(self, method: str, path: str, query: str = "", headers=()) -> None:
        self.method, self.path, self.query_string = method, path, query
        self.headers = Headers(list(headers))


class Protocol:
    """Gives the body in `chunks`, waiting `pause` seconds before each; records the answer."""

    def __init__(self, chunks: list[bytes], pause: float = 0.0) -> None:
        self.chunks, self.pause, self.read = chunks, pause, 0
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        for chunk in self.chunks:
            await asyncio.sleep(self.pause)
            self.read += 1
            yield chunk

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


def serve(scope: Scope, protocol: Protocol, *, limit: int = 1024) -> dict[str, Any]:
    """Runs one request through a bridge over an app that records its environ and body."""
    seen: dict[str, Any] = {}

    def app(environ, start_response):
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-One", "1")])
        return [b"made", b" it"]

    bridge = RSGIBridge(app, max_body_bytes=limit)

    async def run() -> None:
        bridge.__rsgi_init__(asyncio.get_running_loop())
        await bridge.__rsgi__(scope, protocol)

    asyncio.run(run())
    return seen


def test_the_environ_is_pep_3333() -> None:
    headers = [("host", "edge"), ("content-type", "application/json"), ("content-length", "2"),
               ("x-many", "a"), ("x-many", "b"), ("authorization", "Bearer t")]  # fmt: skip
    protocol = Protocol([b"{}"])
    seen = serve(Scope("POST", "/api/t\u00e9ches/1/", "a=%2F&b=1", headers), protocol)

    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["PATH_INFO"] == "/api/t\u00e9ches/1/".encode().decode("latin-1")
    assert seen["QUERY_STRING"] == "a=%2F&b=1"
    assert seen["CONTENT_TYPE"] == "application/json" and seen["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_TYPE" not in seen
    assert seen["HTTP_X_MANY"] == "a, b"
    assert seen["HTTP_AUTHORIZATION"] == "Bearer t"
    assert seen["REMOTE_ADDR"] == "10.1.2.3"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1" and seen["wsgi.url_scheme"] == "http"
    assert seen["body"] == b"{}"
    assert protocol.answer == (201, [("Content-Type", "text/plain"), ("X-One", "1")], b"made it")


def test_nothing_from_the_process_environment(monkeypatch) -> None:
    monkeypatch.setenv("HTTP_X_REQUEST_ID", "from-the-process")
    monkeypatch.setenv("CONTENT_TYPE", "text/evil")
    seen = serve(Scope("GET", "/"), Protocol([]))
    assert "HTTP_X_REQUEST_ID" not in seen and "CONTENT_TYPE" not in seen


def test_an_ipv6_client() -> None:
    scope = Scope("GET", "/")
    scope.client, scope.server = "[::1]:4242", "[::1]:8000"
    seen = serve(scope, Protocol([]))
    assert seen["REMOTE_ADDR"] == "::1" and seen["SERVER_NAME"] == "::1"


CHUNKED = [("transfer-encoding", "chunked")]


def test_the_body_arrives_whole_in_chunks_and_stops_past_the_limit() -> None:
    assert serve(Scope("POST", "/", headers=CHUNKED), Protocol([b"ab", b"cd", b"ef"]))["body"] == b"abcdef"
    protocol = Protocol([b"x" * 600, b"y" * 600, b"z" * 600, b"w" * 600])
    seen = serve(Scope("POST", "/", headers=CHUNKED), protocol, limit=1000)
    assert seen["body"] == b"x" * 600 + b"y" * 600  # the limit plus some: the app says 413
    assert protocol.read == 2  # the rest was never read


def test_a_body_too_slow_is_408_and_the_app_never_runs(monkeypatch) -> None:
    monkeypatch.setattr(rsgi_bridge, "BODY_READ_TIMEOUT", 0.2)
    protocol = Protocol([b"{", b" ", b"}"], pause=0.15)
    seen = serve(Scope("POST", "/", headers=CHUNKED), protocol)

    assert seen == {}
    status, headers, body = protocol.answer
    assert status == 408
    assert ("content-type", "application/problem+json") in headers
    assert ("connection", "close") in headers
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["code"] == "REQUEST_TIMEOUT" and problem["request_id"]


def test_a_body_declared_over_the_limit_is_never_read() -> None:
    protocol = Protocol([b"x" * 600] * 4)
    seen = serve(Scope("POST", "/", headers=[("content-length", "2400")]), protocol, limit=1000)
    assert seen["body"] == b"" and seen["CONTENT_LENGTH"] == "2400"  # Werkzeug answers 413
    assert protocol.read == 0


def test_no_body_is_read_without_content_length_or_transfer_encoding() -> None:
    protocol = Protocol([b"ignored"])
    assert serve(Scope("GET", "/"), protocol)["body"] == b""
    assert protocol.read == 0


def test_an_app_that_raises_is_a_500_problem() -> None:
    def broken(environ, start_response):
        raise RuntimeError("boom")

    bridge = RSGIBridge(broken, max_body_bytes=10)
    protocol = Protocol([])

    async def run() -> None:
        bridge.__rsgi_init__(asyncio.get_running_loop())
        await bridge.__rsgi__(Scope("GET", "/"), protocol)

    asyncio.run(run())
    status, headers, body = protocol.answer
    assert status == 500 and ("content-type", "application/problem+json") in headers
    assert "boom" not in body.decode() and json.loads(body)["code"] == "INTERNAL_SERVER_ERROR"


@pytest.mark.parametrize("proto", ["ws"])
def test_other_protocols_are_not_served(proto: str) -> None:
    scope = Scope("GET", "/")
    scope.proto = proto
    protocol = Protocol([])
    assert serve(scope, protocol) == {} and protocol.answer is None


def test_requests_interleave_at_their_awaits_each_in_its_own_context() -> None:
    """Ten requests at once: each waits (as for its gRPC call) while the others run, and
    each still sees its own Flask request, `g` and context variables afterwards."""
    app = Flask(__name__)
    running: list[str] = []
    most = 0

    @app.get("/echo/<name>")
    def echo(name: str):
        nonlocal most
        g.name = name
        request_id_var.set(f"id-{name}")
        running.append(name)
        most = max(most, len(running))
        # The later requests wait less: they finish first, in the reverse order.
        greenlets.await_only(asyncio.sleep(0.01 * (10 - int(name))))
        running.remove(name)
        return {"path": request.path, "arg": request.args["n"], "g": g.name, "id": request_id_var.get()}

    bridge = RSGIBridge(app, max_body_bytes=100)
    protocols = [Protocol([]) for _ in range(10)]

    async def run() -> None:
        bridge.__rsgi_init__(asyncio.get_running_loop())
        request_id_var.set("the loop's")
        await asyncio.gather(
            *(bridge.__rsgi__(Scope("GET", f"/echo/{n}", f"n={n}"), p) for n, p in enumerate(protocols))
        )
        assert request_id_var.get() == "the loop's"  # nothing leaked into the loop's context

    asyncio.run(run())
    assert most == 10  # all ten were in the app at once, on one thread
    for n, protocol in enumerate(protocols):
        status, _, body = protocol.answer
        assert status == 200
        assert json.loads(body) == {"path": f"/echo/{n}", "arg": str(n), "g": str(n), "id": f"id-{n}"}


def test_a_request_that_never_awaits_is_answered() -> None:
    protocol = Protocol([])
    serve(Scope("GET", "/"), protocol)
    assert protocol.answer[0] == 201


def test_a_failure_in_the_awaited_call_reaches_the_app_handlers() -> None:
    app = Flask(__name__)

    async def fails() -> None:
        await asyncio.sleep(0)
        raise LookupError("the backend said no")

    @app.get("/")
    def view():
        greenlets.await_only(fails())

    @app.errorhandler(LookupError)
    def handled(error: LookupError):
        return {"handled": str(error)}, 409

    bridge = RSGIBridge(app, max_body_bytes=100)
    protocol = Protocol([])

    async def run() -> None:
        bridge.__rsgi_init__(asyncio.get_running_loop())
        await bridge.__rsgi__(Scope("GET", "/"), protocol)

    asyncio.run(run())
    assert protocol.answer[0] == 409 and json.loads(protocol.answer[2]) == {"handled": "the backend said no"}
