"""Untrusted input through the real edge process (issue 9, section 1): bodies sent with
`Transfer-Encoding: chunked`, JSON nested too deep, query values no parser may turn into a
500. Raw sockets to the server `make run` starts, so its HTTP layer is part of the test."""

from __future__ import annotations

import pytest

from tests.support.processes import ProcessStack
from tests.system.accounts import Account, register_and_login
from tests.system.test_edge_answers import assert_problem, exchange

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

LIMIT = 64 * 1024  # settings.max_body_bytes


@pytest.fixture(scope="module")
def port(process_stack: ProcessStack) -> int:
    return process_stack.ports["edge"]


@pytest.fixture(scope="module")
def account(process_stack: ProcessStack) -> Account:
    return register_and_login(process_stack, "input")


def _head(method: bytes, path: bytes, account: Account, *extra: bytes) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: edge", b"Content-Type: application/json",
             b"Authorization: Bearer " + account.access.encode(), *extra]
    return b"\r\n".join(lines)


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[start:start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def _padded_task(length: int) -> bytes:
    """A valid create-task body of exactly `length` bytes (JSON allows trailing spaces)."""
    body = b'{"title": "padded"}'
    return body + b" " * (length - len(body))


@pytest.mark.parametrize("chunk_size", [LIMIT + 1, 4096, 1000])
def test_a_chunked_body_over_the_limit_is_413_not_cut(port: int, account: Account, chunk_size: int) -> None:
    head = _head(b"POST", b"/api/tasks/", account, b"Transfer-Encoding: chunked")
    body = _chunked(_padded_task(LIMIT + 1), chunk_size)

    assert_problem(exchange(port, head, body), 413)  # was 201: the body cut at the limit


def test_a_chunked_body_at_the_limit_is_read_whole(port: int, account: Account) -> None:
    head = _head(b"POST", b"/api/tasks/", account, b"Transfer-Encoding: chunked")

    status, _, payload = exchange(port, head, _chunked(_padded_task(LIMIT), 5000))

    assert status == 201, payload


@pytest.mark.parametrize(
    "body",
    [b"[" * 1000, b'{"title": ' + b"[" * 40 + b"]" * 40 + b"}", b'{"title": "a", "title": "b"}', b"\xff{}"],
    ids=["1000-deep", "42-deep", "duplicate-name", "not-utf-8"],
)
def test_json_nested_too_deep_or_ambiguous_is_400(port: int, account: Account, body: bytes) -> None:
    head = _head(b"POST", b"/api/tasks/", account, b"Content-Length: %d" % len(body))

    assert_problem(exchange(port, head, body), 400)


@pytest.mark.parametrize(
    "query",
    [
        b"due_before=0001-01-01T00:00:00%2B01:00",  # OverflowError: a 500 before
        b"due_before=2030-01-01T00:00:00%2B00:90",
        b"q=a%00b",  # NUL: a 500 on PostgreSQL before
        b"q=a%1Bb",
        b"page_size=%D9%A1%D9%A2",  # Arabic-Indic digits, which int() takes
        b"page_size=1_0",
        b"page_size=%2B7",
        b"page_size=-1",
        b"page_token=" + b"A" * 30 + b"!",
    ],
)
def test_bad_query_values_are_400(port: int, account: Account, query: bytes) -> None:
    assert_problem(exchange(port, _head(b"GET", b"/api/tasks/?" + query, account)), 400)


def test_a_page_size_above_the_maximum_is_clamped_however_large(port: int, account: Account) -> None:
    for size in (b"101", b"10000000000", b"9" * 19):
        status, _, payload = exchange(port, _head(b"GET", b"/api/tasks/?page_size=" + size, account))
        assert status == 200, payload
