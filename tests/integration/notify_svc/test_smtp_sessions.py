"""SMTP sessions are kept and reused (one per sending thread), and replaced when the
server has closed one, against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
import time

import pytest
from aiosmtpd.controller import Controller

from common.settings import Settings
from notify_svc.mailer import SmtpMailer, send_with_retries
from notify_svc.messages import Email
from tests.support.local import free_port


class Sessions:
    """Keeps, per email received, the client's address and port: one per SMTP session."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.recipients: list[str] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 (aiosmtpd's hook)
        with self._lock:
            self.peers.append(session.peer)
            self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def server():
    """An SMTP server that ends a session idle for 0.5 s (as real servers do, later)."""
    sessions = Sessions()
    controller = Controller(sessions, hostname="127.0.0.1", port=free_port(), timeout=0.5)
    controller.start()
    sessions.port = controller.port
    yield sessions
    controller.stop()


def mailer_for(server: Sessions, tmp_path) -> SmtpMailer:  # noqa: ANN001
    return SmtpMailer(Settings(
        environment="test", var_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=server.port,
        smtp_starttls=False,
    ))


def email(n: int) -> Email:
    return Email(to=f"user{n}@example.com", subject="Subject", body=f"Hello {n}\n")


def test_emails_sent_one_after_another_share_one_session(server, tmp_path) -> None:
    mailer = mailer_for(server, tmp_path)
    for n in range(20):
        mailer.send(email(n))
    mailer.close()
    assert server.recipients == [f"user{n}@example.com" for n in range(20)]
    assert len(set(server.peers)) == 1


def test_each_sending_thread_keeps_its_own_session(server, tmp_path) -> None:
    mailer = mailer_for(server, tmp_path)
    threads = [
        threading.Thread(target=lambda t=t: [mailer.send(email(t * 100 + n)) for n in range(10)])
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mailer.close()
    assert len(server.recipients) == len(set(server.recipients)) == 40
    assert len(set(server.peers)) == 4


def test_a_session_the_server_closed_is_replaced_without_a_failed_attempt(server, tmp_path) -> None:
    mailer = mailer_for(server, tmp_path)
    mailer.send(email(1))
    time.sleep(1.0)  # the server ends the idle session
    outcome = send_with_retries(mailer, email(2), attempts=1, base_delay=0)
    mailer.close()
    assert (outcome.sent, outcome.attempts) == (True, 1)
    assert server.recipients == ["user1@example.com", "user2@example.com"]
    assert len(set(server.peers)) == 2
