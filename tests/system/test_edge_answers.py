"""Every answer of the real edge process is problem+json, including the ones that come
from around the app: routing redirects, 404/405, 414, 431, 413 (issue 9, section 1).

Requests go over raw sockets to the server `make run` starts (tests/support/processes.py),
so what the HTTP server does before the app is part of what is tested.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.local import free_port, wait_for
from tests.support.processes import REPO, ProcessStack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

PROBLEM = "application/problem+json"


def exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Sends `head` (request line and header lines, without the blank line) and `body`;
    returns the status, the headers (lower-case names) and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int) -> dict:
    got, headers, payload = answer
    assert got == status, answer
    assert headers.get("content-type") == PROBLEM, answer
    problem = json.loads(payload)
    assert problem["status"] == status
    assert problem["title"] and problem["detail"] and problem["code"]
    assert "Traceback" not in problem["detail"]
    return problem


def get(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: edge" + extra


@pytest.fixture(scope="module")
def port(process_stack: ProcessStack) -> int:
    return process_stack.ports["edge"]


def test_a_trailing_slash_is_optional_and_never_redirected(port: int) -> None:
    for path in (b"/swagger", b"/swagger/", b"/healthz/", b"/api/tasks", b"/swagger.json/"):
        status, headers, _ = answer = exchange(port, get(path))
        assert not 300 <= status < 400 and "location" not in headers, answer
    assert exchange(port, get(b"/swagger"))[0] == 200
    assert exchange(port, get(b"/healthz/"))[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        b"/api//tasks/",  # Werkzeug merged slashes and redirected to /api/tasks/
        b"//api/tasks/",
        b"/api/users//profile/",
        b"/api/tasks/%2E%2E/",  # decoded: a dot segment
        b"/api/tasks/./",
        b"/api/tasks/1/%2e%2e/",
        b"/api/users/profile/..",
        b"/swagger//",
    ],
)
def test_a_path_that_is_not_canonical_is_404_never_a_redirect(port: int, path: bytes) -> None:
    assert_problem(exchange(port, get(path)), 404)


@pytest.mark.parametrize("path", [b"/swagger%2F", b"/api/tasks%2F", b"/api%2Ftasks", b"/swag%67er"])
def test_an_encoded_character_is_never_redirected(port: int, path: bytes) -> None:
    # granian hands the app the decoded path only, so there %2F cannot be told from "/"
    # (edge_api.request_head): it is served as the path it decodes to, never redirected.
    status, headers, _ = answer = exchange(port, get(path))
    assert not 300 <= status < 400, answer
    assert "location" not in headers, answer


def test_unknown_path_and_method(port: int) -> None:
    assert_problem(exchange(port, get(b"/nothing/here")), 404)
    answer = exchange(port, b"DELETE /healthz HTTP/1.1\r\nHost: edge")
    assert_problem(answer, 405)
    assert set(answer[1]["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    # Methods are case-sensitive (RFC 9110 section 9.1); one the server does not know is
    # 501 on any path (section 15.6.2). `get` was served as GET, BREW was 405.
    unknown = (b"BREW /api/tasks/", b"get /healthz", b"get /api/tasks/", b"get /nowhere", b"Post /api/token/")
    for line in unknown:
        assert_problem(exchange(port, line + b" HTTP/1.1\r\nHost: edge"), 501)


def test_a_uri_over_8_kib_is_414(port: int) -> None:
    assert_problem(exchange(port, get(b"/api/tasks/?q=" + b"a" * 9000)), 414)
    assert_problem(exchange(port, get(b"/" + b"a" * 9000)), 414)
    # Far past it too, up to hyper's own cap on a URI (65,534 bytes, edge_api.server).
    assert_problem(exchange(port, get(b"/api/tasks/?q=" + b"a" * 60_000)), 414)


def test_header_fields_over_16_kib_are_431(port: int) -> None:
    assert_problem(exchange(port, get(b"/healthz", b"\r\nX-Big: " + b"a" * 20_000)), 431)
    many = b"".join(b"\r\nX-Field-%d: %s" % (i, b"b" * 300) for i in range(60))
    assert_problem(exchange(port, get(b"/healthz", many)), 431)
    assert_problem(exchange(port, get(b"/healthz", b"\r\nX-Big: " + b"a" * 200_000)), 431)


def test_a_body_over_the_limit_is_413(port: int) -> None:
    body = b'{"username": "' + b"x" * 70_000 + b'"}'
    head = b"POST /api/token/ HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
    assert_problem(exchange(port, head + b"Content-Length: %d" % len(body), body), 413)
    # Declared and never sent: answered at once, nothing read (edge_api.rsgi_bridge).
    assert_problem(exchange(port, head + b"Content-Length: 1000000000"), 413)


def test_requests_within_the_limits_are_served(port: int) -> None:
    status, headers, _ = exchange(port, get(b"/healthz", b"\r\nX-Big: " + b"a" * 8_000))
    assert status == 200
    status, _, _ = exchange(port, get(b"/healthz?" + b"a" * 7_000))
    assert status == 200


def test_what_is_no_http_request_gets_a_bare_400_and_nothing_else(port: int) -> None:
    # hyper answers what it cannot frame as a request before any app exists for it: a
    # status and no body (edge_api.server). No HTML page, no trace, no server details.
    garbage_requests = (
        b"NOT HTTP AT ALL",
        b"GET /healthz HTTP/9.9\r\nHost: edge",
        get(b"/he\x01lthz"),
        b"PRI * HTTP/2.0\r\n\r\nSM",  # HTTP/2 with prior knowledge: HTTP/1.1 only (edge_api.server)
    )
    for garbage in garbage_requests:
        status, headers, payload = exchange(port, garbage)
        assert status == 400
        assert payload == b""
        assert headers.get("content-length") == "0"


def test_the_process_environment_never_reaches_a_request(tmp_path: Path) -> None:
    # granian starts each WSGI environ from os.environ: without edge_api.server's filter a
    # variable named like a header (HTTP_PROXY ...) was a header of every request.
    port = free_port()
    env = {
        **os.environ,
        "EDGE_PORT": str(port),
        "EDGE_METRICS_PORT": str(free_port()),
        "VAR_DIR": str(tmp_path),
        "HTTP_X_REQUEST_ID": "from-the-process",
    }
    with (tmp_path / "edge.log").open("wb") as log:
        edge = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "edge_api"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        answer = wait_for(lambda: _healthz(port), timeout=30)
        assert answer.status_code == 200
        assert answer.headers["X-Request-Id"] != "from-the-process"
        given = requests.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "mine"}, timeout=5)
        assert given.headers["X-Request-Id"] == "mine"
    finally:
        edge.terminate()
        edge.wait(20)


def _healthz(port: int) -> requests.Response | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except requests.ConnectionError:
        return None
