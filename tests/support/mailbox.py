"""A real SMTP server for tests (aiosmtpd) and the mailbox it delivers to."""

from __future__ import annotations

import email
import email.message
import email.policy
import re
import threading

from aiosmtpd.controller import Controller

from tests.support.local import free_port, wait_for

_CODE = re.compile(r"code is (\d{6})\b")


class Inbox:
    """An aiosmtpd handler that keeps every email it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 (aiosmtpd's hook)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [message for message in self.messages if message["To"] == address]

    def code_for(self, address: str, subject_word: str = "verification", timeout: float = 15.0) -> str:
        """The code of the latest email to `address` whose subject has `subject_word`."""

        def latest_code() -> str | None:
            for message in reversed(self.to(address)):
                if subject_word in message["Subject"]:
                    return _CODE.search(message.get_content()).group(1)
            return None

        return wait_for(latest_code, timeout)


def start_smtp_server() -> tuple[Controller, Inbox]:
    """An SMTP server on a free local port; stop it with `controller.stop()`."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, inbox
