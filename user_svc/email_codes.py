"""Emailed codes: sending them (verification, password reset) and accepting them.

Nothing here reveals whether an address is registered: sending answers the same for
any address (also when throttled, silently), and every wrong, expired, used or unknown
code is the same INVALID_OTP. The guess budget counts the submitted address, registered
or not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.db import Database
from common.errors import InvalidArgument, ResourceExhausted, invalid
from user_svc import attempts, events, otp, sessions
from user_svc.identity import email_problem, normalize_email
from user_svc.models import OtpCode, User
from user_svc.otp import Purpose
from user_svc.passwords import Passwords, password_problems

RESEND_DETAIL = "If the address is registered and not yet verified, a new code has been sent to it."
FORGOT_DETAIL = "If the address is registered, a password reset code has been sent to it."


class EmailCodes:
    def __init__(
        self, database: Database, mac: otp.CodeMac, passwords: Passwords, clock: Callable[[], dt.datetime]
    ) -> None:
        self._db = database
        self._mac = mac
        self._passwords = passwords
        self._clock = clock

    def send(self, session: Session, user: User, purpose: Purpose) -> None:
        """Sends a new code (the event carries it) and cancels the previous ones."""
        now = self._clock()
        session.execute(
            update(OtpCode)
            .where(OtpCode.user_id == user.id, OtpCode.purpose == purpose.value, OtpCode.closed_at.is_(None))
            .values(closed_at=now)
        )
        code = otp.new_code()
        session.add(
            OtpCode(
                user_id=user.id,
                purpose=purpose.value,
                code_mac=self._mac.of(user.id, purpose, code),
                created_at=now,
                expires_at=now + otp.LIFETIME,
                wrong_attempts=0,
            )
        )
        events.code_sent(session, user, purpose, code)

    def resend_verification(self, email: str) -> str:
        with self._db.transaction() as session:
            user = _locked_user(session, _checked_email(email))
            if user is not None and not user.email_verified:
                self._send_unless_throttled(session, user, Purpose.VERIFY_EMAIL)
        return RESEND_DETAIL

    def forgot_password(self, email: str) -> str:
        with self._db.transaction() as session:
            user = _locked_user(session, _checked_email(email))
            if user is not None:
                self._send_unless_throttled(session, user, Purpose.RESET_PASSWORD)
        return FORGOT_DETAIL

    def verify_email(self, email: str, code: str) -> None:
        with self._db.transaction() as session:
            user = self._accept_code(session, _checked_email(email), Purpose.VERIFY_EMAIL, code)
            if user is not None and not user.email_verified:
                user.email_verified = True
                events.verified(session, user)
        if user is None:
            raise _invalid_code()

    def reset_password(self, email: str, code: str, new_password: str) -> None:
        """Sets the password and revokes every refresh token of the user."""
        # Checks that need no account come first; the username check needs the account,
        # so it waits until the code proved the caller owns it.
        if problems := password_problems(new_password):
            raise invalid({"new_password": problems})
        with self._db.transaction() as session:
            user = self._accept_code(session, _checked_email(email), Purpose.RESET_PASSWORD, code)
            if user is not None:
                if problems := password_problems(new_password, user.username):
                    raise invalid({"new_password": problems})  # rolls back: the code stays usable
                user.password_hash = self._passwords.hash(new_password)
                sessions.revoke_all(session, user.id, self._clock())
        if user is None:
            raise _invalid_code()

    def _send_unless_throttled(self, session: Session, user: User, purpose: Purpose) -> None:
        now = self._clock()
        sent = session.scalars(
            select(OtpCode.created_at).where(
                OtpCode.user_id == user.id,
                OtpCode.purpose == purpose.value,
                OtpCode.created_at > now - dt.timedelta(hours=1),
            )
        )
        if otp.may_send(list(sent), now):
            self.send(session, user, purpose)

    def _accept_code(self, session: Session, email: str, purpose: Purpose, code: str) -> User | None:
        """The user whose valid code this is (now used up), or None after recording a failure.

        Raises RESOURCE_EXHAUSTED when the address has used up its guess budget.
        """
        now = self._clock()
        user = _locked_user(session, email)  # serialises guesses at one code
        key = attempts.code_key(purpose, email)
        retry_after = otp.guess_retry_after(
            attempts.failures_since(session, key, now - otp.GUESS_WINDOW), now
        )
        if retry_after is not None:
            raise ResourceExhausted(
                "TOO_MANY_ATTEMPTS", "Too many wrong codes for this address; try again later.",
                retry_after=retry_after,
            )
        if not otp.well_formed(code):
            raise _invalid_code()  # cannot be right, so it costs no try
        current = None if user is None else _open_code(session, user.id, purpose)
        if current is not None and self._mac.matches(current.code_mac, user.id, purpose, code):
            state = otp.CodeState(current.expires_at, current.wrong_attempts, current.closed_at is not None)
            if state.usable(now):
                current.closed_at = now
                return user
        elif current is not None:
            current.wrong_attempts += 1
        attempts.record_failure(session, key, now, keep=otp.GUESS_WINDOW)
        return None


def _checked_email(email: str) -> str:
    email = normalize_email(email)
    if problem := email_problem(email):
        raise invalid({"email": problem})
    return email


def _locked_user(session: Session, email: str) -> User | None:
    """The user with this address, row-locked so their codes change one request at a time."""
    return session.scalar(select(User).where(User.email == email).with_for_update())


def _open_code(session: Session, user_id: int, purpose: Purpose) -> OtpCode | None:
    return session.scalar(
        select(OtpCode)
        .where(OtpCode.user_id == user_id, OtpCode.purpose == purpose.value, OtpCode.closed_at.is_(None))
        .order_by(OtpCode.id.desc())
        .limit(1)
    )


def _invalid_code() -> InvalidArgument:
    return InvalidArgument(
        "INVALID_OTP", "The code is wrong, expired or already used.",
        fields={"otp_code": "Wrong, expired or already used."},
    )
