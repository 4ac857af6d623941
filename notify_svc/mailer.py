"""Sending email: SMTP, or the console in development, with bounded retries."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import sys
import threading
from dataclasses import dataclass
from email.mime.text import MIMEText
from typing import Protocol, TextIO

import tenacity

from common.settings import Settings
from notify_svc.messages import Email


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


# Refusals of one message (smtplib resets the session after them): the session stays.
_REFUSED_MESSAGE = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


class SmtpMailer:
    """SMTP, one session per sending thread, kept open and reused (STARTTLS and login
    when configured, once per session); a session the server has closed meanwhile (an
    idle timeout, a restart) is replaced and the email sent on a new one at once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: set[smtplib.SMTP] = set()

    def send(self, email: Email) -> None:
        settings = self._settings
        # MIMEText (the compat32 policy): email.policy.default's header registry parsed
        # and refolded every header, most of a send's CPU; these headers need neither
        # (non-ASCII is still encoded per RFC 2047, the body as UTF-8 per RFC 2045).
        message = MIMEText(email.body, "plain", "utf-8")
        message["From"] = settings.smtp_from
        message["To"] = email.to
        message["Subject"] = email.subject
        smtp = getattr(self._local, "smtp", None)
        if smtp is not None:
            try:
                self._send_on(smtp, message)
                return
            except smtplib.SMTPServerDisconnected:
                pass  # closed before this message got an answer: a new session, at once
        self._send_on(self._open(), message)

    def _send_on(self, smtp: smtplib.SMTP, message: MIMEText) -> None:
        try:
            smtp.send_message(message)
        except _REFUSED_MESSAGE:
            raise  # this message was refused; the session is still good
        except OSError:  # SMTPException included: the session is in an unknown state
            self._drop(smtp)
            raise

    def close(self) -> None:
        """Ends every session (QUIT)."""
        with self._lock:
            sessions, self._sessions = self._sessions, set()
        for smtp in sessions:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    def _open(self) -> smtplib.SMTP:
        settings = self._settings
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
        try:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        self._local.smtp = smtp
        with self._lock:
            self._sessions.add(smtp)
        return smtp

    def _drop(self, smtp: smtplib.SMTP) -> None:
        self._local.smtp = None
        with self._lock:
            self._sessions.discard(smtp)
        smtp.close()


class ConsoleMailer:
    """The development default: emails are printed, which is how a developer reads an OTP."""

    # One stream under a lock: emails are written one by one, never on sending threads.
    parallel = False

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
    # The mail server was away or answered "try later" (RFC 5321 section 4.2.1: a 4yz
    # reply is transient), not a refusal of this email (5yz): the event is retried.
    transient: bool = False


def transient_failure(error: BaseException | None) -> bool:
    """Whether a send error says "try again later" (see SendOutcome.transient)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, OSError)  # no answer: refused, reset, timed out, disconnected


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
        return SendOutcome(
            False, exc.last_attempt.attempt_number, f"{type(error).__name__}: {error}",
            transient=transient_failure(error),
        )
    return SendOutcome(True, retrying.statistics["attempt_number"])
