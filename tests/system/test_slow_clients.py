"""Slow clients do not freeze the edge (issue 9, section 2).

200 connections each send a request line and then one header line every second, never
finishing their heads (a slowloris). Meanwhile /healthz and an authenticated API call
from other clients answer at once, again and again. Under gunicorn gthread about 16 such
clients held every thread and nothing else was answered until they went away.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.processes import ProcessStack
from tests.system.accounts import Account

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

SLOW_CLIENTS = 200
DRIP_SECONDS = 1.0
CHECK_FOR_SECONDS = 4.0  # well within the server's header read timeout (10 s)
QUICK = 1.0  # seconds: what "answers at once" means on a shared 2-core machine


class Slowloris:
    """`count` connections that each started a GET and add a header line every DRIP_SECONDS."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
            self.sockets.append(sock)
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        n = 0
        while not self._stop.wait(DRIP_SECONDS):
            n += 1
            for sock in self.sockets:
                try:
                    sock.sendall(b"X-Slow-%d: still here\r\n" % n)
                except OSError:
                    self.dropped += 1

    def finish_one(self) -> bytes:
        """Completes the first connection's request; returns what the edge answers to it."""
        self._stop.set()
        self._thread.join()
        sock = self.sockets[0]
        sock.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def slowloris(process_stack: ProcessStack) -> Iterator[Slowloris]:
    attack = Slowloris(process_stack.ports["edge"], SLOW_CLIENTS)
    yield attack
    attack.close()


def _timed_get(url: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    answer = requests.get(url, timeout=5, **kwargs)
    return answer.status_code, time.monotonic() - started


def test_the_edge_serves_others_while_200_clients_send_headers_slowly(
    process_stack: ProcessStack, new_account, slowloris: Slowloris
) -> None:
    account: Account = new_account("patient")
    answers = []
    deadline = time.monotonic() + CHECK_FOR_SECONDS
    while time.monotonic() < deadline:
        # A new connection each time: it must be accepted and read beside the slow ones.
        answers.append(("healthz", *_timed_get(f"{process_stack.edge_url}/healthz")))
        answers.append(
            ("profile", *_timed_get(f"{process_stack.edge_url}/api/users/profile/", headers=account.headers))
        )
        time.sleep(0.2)

    assert all(status == 200 for _, status, _ in answers), answers
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < QUICK, f"slowest answer {slowest:.2f}s: {answers}"
    # The slow clients were held open all along, not refused: one that finishes its
    # head gets its answer.
    assert slowloris.dropped == 0
    assert slowloris.finish_one().startswith(b"HTTP/1.1 200")
