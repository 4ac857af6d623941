"""Slow clients do not freeze the edge (issue 9, section 2).

200 connections each send a request line and then one header line every second, never
finishing their heads (a slowloris); or a whole head and then their body one byte a
second. Meanwhile /healthz and an authenticated API call from other clients answer at
once, again and again. Under gunicorn gthread about 16 slow heads held every thread and
nothing else was answered until they went away; under granian's WSGI interface, 16 slow
bodies did the same (edge_api.rsgi_bridge).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.support.processes import ProcessStack
from tests.system.accounts import Account

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

SLOW_CLIENTS = 200
DRIP_SECONDS = 1.0
CHECK_FOR_SECONDS = 4.0  # well within the server's header read timeout (10 s)
QUICK = 1.0  # seconds: what "answers at once" means on a shared 2-core machine


SLOW_HEAD = (b"GET /healthz HTTP/1.1\r\nHost: slow\r\n", b"X-Slow-%d: still here\r\n")
SLOW_BODY = (
    b"POST /api/tasks/ HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
    b"Content-Length: 4096\r\n\r\n{",
    b" ",
)


class Slowloris:
    """`count` connections that each sent `opening` and add `drip` every DRIP_SECONDS
    (`drip` may hold %d for a counter)."""

    def __init__(self, port: int, count: int, opening: bytes, drip: bytes) -> None:
        self.drip = drip
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(opening)
            self.sockets.append(sock)
        self.dropped = 0
        self.dripped = 0  # bytes each connection got after its opening
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        n = 0
        while not self._stop.wait(DRIP_SECONDS):
            n += 1
            drip = self.drip % n if b"%d" in self.drip else self.drip
            for sock in self.sockets:
                try:
                    sock.sendall(drip)
                except OSError:
                    self.dropped += 1
            self.dripped += len(drip)

    def stop(self) -> None:
        """Stops the drip: `dripped` is final."""
        self._stop.set()
        self._thread.join()

    def finish_one(self, rest: bytes = b"\r\n") -> bytes:
        """Sends the first connection the rest of its request; returns the edge's answer."""
        self.stop()
        sock = self.sockets[0]
        sock.sendall(rest)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        while length and len(body) < int(length[1]):
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def slowloris(process_stack: ProcessStack) -> Iterator[Callable[..., Slowloris]]:
    attacks = []

    def start(opening: bytes, drip: bytes) -> Slowloris:
        attacks.append(Slowloris(process_stack.ports["edge"], SLOW_CLIENTS, opening, drip))
        return attacks[-1]

    yield start
    for attack in attacks:
        attack.close()


def _others_are_served(stack: ProcessStack, account: Account) -> None:
    answers = []
    deadline = time.monotonic() + CHECK_FOR_SECONDS
    while time.monotonic() < deadline:
        # A new connection each time: it must be accepted and read beside the slow ones.
        answers.append(("healthz", *_timed_get(f"{stack.edge_url}/healthz")))
        profile = _timed_get(f"{stack.edge_url}/api/users/profile/", headers=account.headers)
        answers.append(("profile", *profile))
        time.sleep(0.2)
    assert all(status == 200 for _, status, _ in answers), answers
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < QUICK, f"slowest answer {slowest:.2f}s: {answers}"


def _timed_get(url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    answer = requests.get(url, timeout=5, **kwargs)
    return answer.status_code, time.monotonic() - started


def test_the_edge_serves_others_while_200_clients_send_headers_slowly(
    process_stack: ProcessStack, new_account, slowloris
) -> None:
    account: Account = new_account("patient")
    attack = slowloris(*SLOW_HEAD)

    _others_are_served(process_stack, account)

    # The slow clients were held open all along, not refused: one that finishes its
    # head gets its answer.
    assert attack.dropped == 0
    assert attack.finish_one().startswith(b"HTTP/1.1 200")


def test_the_edge_serves_others_while_200_clients_send_bodies_slowly(
    process_stack: ProcessStack, new_account, slowloris
) -> None:
    account: Account = new_account("patient")
    attack = slowloris(*SLOW_BODY)

    _others_are_served(process_stack, account)

    assert attack.dropped == 0
    # One that finishes its body gets the app's answer (it carries no token: 401).
    attack.stop()
    answer = attack.finish_one(b" " * (4096 - 2 - attack.dripped) + b"}")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]


def test_a_body_that_never_ends_is_408_after_the_read_timeout(process_stack: ProcessStack) -> None:
    with socket.create_connection(("127.0.0.1", process_stack.ports["edge"]), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(SLOW_BODY[0])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer
    assert 9 < time.monotonic() - started < 15
