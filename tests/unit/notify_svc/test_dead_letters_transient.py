"""Which send failures are transient (the event is retried, and past the delivery limit
dead-lettered) and which are this email's refusal (a FAILED entry): RFC 5321 section
4.2.1, 4yz transient, 5yz permanent; no answer at all is transient."""

from __future__ import annotations

import smtplib
import socket

import pytest

from notify_svc.mailer import send_with_retries, transient_failure
from notify_svc.messages import Email


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPConnectError(421, b"Service not available"),
        smtplib.SMTPResponseException(451, b"Local error in processing"),
        smtplib.SMTPDataError(452, b"Insufficient system storage"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"Mailbox busy")}),
    ],
)
def test_no_answer_or_a_4yz_reply_is_transient(error: Exception) -> None:
    assert transient_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPDataError(554, b"Transaction failed"),
        smtplib.SMTPSenderRefused(553, b"Sender address rejected", "from@example.com"),
        smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"No such user")}),
        smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"busy"), "b@example.com": (550, b"no")}),
        smtplib.SMTPAuthenticationError(535, b"Authentication credentials invalid"),
    ],
)
def test_a_5yz_refusal_is_not(error: Exception) -> None:
    assert not transient_failure(error)


def test_the_outcome_after_the_retries_says_which() -> None:
    class Refusing:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def send(self, email: Email) -> None:
            raise self.error

    email = Email(to="a@example.com", subject="s", body="b")
    away = send_with_retries(
        Refusing(ConnectionRefusedError(111, "refused")), email, attempts=2, base_delay=0,
    )
    refused = send_with_retries(
        Refusing(smtplib.SMTPDataError(554, b"no")), email, attempts=2, base_delay=0,
    )
    assert (away.sent, away.attempts, away.transient) == (False, 2, True)
    assert (refused.sent, refused.transient) == (False, False)
