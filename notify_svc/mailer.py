"""Sending email: SMTP, or the console in development, with bounded retries."""

from __future__ import annotations

import smtplib
import ssl
import sys
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, TextIO

import tenacity

from common.settings import Settings
from notify_svc.messages import Email


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


class SmtpMailer:
    """One SMTP session per email (STARTTLS and login when configured)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def send(self, email: Email) -> None:
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message.set_content(email.body)
        server = (settings.smtp_host, settings.smtp_port)
        with smtplib.SMTP(*server, timeout=settings.smtp_timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)


class ConsoleMailer:
    """The development default: emails are printed, which is how a developer reads an OTP."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, email: Email) -> None:
        rule = "=" * 72
        with self._lock:
            self._stream.write(
                f"\n{rule}\nEMAIL (console; set SMTP_HOST to send for real)\n"
                f"To: {email.to}\nSubject: {email.subject}\n{'-' * 72}\n{email.body}{rule}\n"
            )
            self._stream.flush()


def mailer_from(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else ConsoleMailer()


@dataclass(frozen=True)
class SendOutcome:
    sent: bool
    attempts: int
    error: str = ""


def send_with_retries(mailer: Mailer, email: Email, *, attempts: int, base_delay: float) -> SendOutcome:
    """Tries up to `attempts` times with exponential backoff; never raises a send error."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(multiplier=base_delay, max=base_delay * 8, jitter=base_delay),
        retry=tenacity.retry_if_exception_type((smtplib.SMTPException, OSError)),
    )
    try:
        retrying(mailer.send, email)
    except tenacity.RetryError as exc:
        error = exc.last_attempt.exception()
        return SendOutcome(False, exc.last_attempt.attempt_number, f"{type(error).__name__}: {error}")
    return SendOutcome(True, retrying.statistics["attempt_number"])
