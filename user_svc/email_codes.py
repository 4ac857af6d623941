"""Emailed codes: asking for them (verification, password reset), sending them, and
accepting them.

Nothing here reveals whether an address is registered (OWASP ASVS v4 2.5.2 / 3.x,
docs/security.md): asking for a code only records the request, the same statements
for every address, and answers the same; `dispatch_pending` (run off the request path
by user_svc.code_dispatch) sends the code when the address has an account that wants
one. A request within the cooldown is refused with RESOURCE_EXHAUSTED and RetryInfo,
counted from the requests for that address, registered or not. Every wrong, expired,
used or unknown code is the same INVALID_OTP.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from sqlalchemy import Update, delete, select, update
from sqlalchemy.orm import Session

from common.context import client_ip_var
from common.db import Database, serialize_on
from common.errors import InvalidArgument, ResourceExhausted, invalid
from user_svc import attempts, events, otp, sessions
from user_svc.identity import email_problem, normalize_email
from user_svc.models import CodeRequest, OtpCode, User
from user_svc.otp import Purpose
from user_svc.passwords import Passwords, password_problems

RESEND_DETAIL = "If the address is registered and not yet verified, a new code is on its way to it."
FORGOT_DETAIL = "If the address is registered, a password reset code is on its way to it."
_DETAILS = {Purpose.VERIFY_EMAIL: RESEND_DETAIL, Purpose.RESET_PASSWORD: FORGOT_DETAIL}
_DISPATCH_BATCH = 50


class EmailCodes:
    def __init__(
        self, database: Database, mac: otp.CodeMac, passwords: Passwords, clock: Callable[[], dt.datetime],
        *, access_ttl_seconds: int,
    ) -> None:
        """`access_ttl_seconds`: how long a reset must keep refusing the user's old tokens."""
        self._access_ttl = access_ttl_seconds
        self._db = database
        self._mac = mac
        self._passwords = passwords
        self._clock = clock
        # Set after every recorded request: wakes the dispatcher at once.
        self.requested = threading.Event()

    def send(self, session: Session, user: User, purpose: Purpose) -> None:
        """Sends a new code (the event carries it) beside the open ones: a request, which
        anybody can make, must not cancel the code in the owner's mailbox (otp.py)."""
        now = self._clock()
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
        """Asks for a new verification code; see `_request`."""
        return self._request(email, Purpose.VERIFY_EMAIL)

    def forgot_password(self, email: str) -> str:
        """Asks for a password reset code; see `_request`."""
        return self._request(email, Purpose.RESET_PASSWORD)

    def _request(self, email: str, purpose: Purpose) -> str:
        """Records a request for a code to `email` and answers the same for every address.

        Raises INVALID_ARGUMENT for a malformed address, RESOURCE_EXHAUSTED
        CODE_REQUESTED_RECENTLY (RetryInfo) within the cooldown of this address's earlier
        requests (otp.request_retry_after), whoever made them: nothing about an account.
        """
        email = _checked_email(email)
        now = self._clock()
        with self._db.transaction() as session:
            serialize_on(session, f"code-request:{purpose.value}:{email}")
            previous = session.scalars(
                select(CodeRequest.requested_at).where(
                    CodeRequest.email == email,
                    CodeRequest.purpose == purpose.value,
                    CodeRequest.requested_at > now - otp.REQUEST_WINDOW,
                )
            )
            wait = otp.request_retry_after(list(previous), now)
            if wait is None:
                session.add(CodeRequest(purpose=purpose.value, email=email, requested_at=now))
        if wait is not None:
            raise ResourceExhausted(
                "CODE_REQUESTED_RECENTLY",
                f"No new code was sent: one was asked for this address less than "
                f"{int(otp.RESEND_COOLDOWN.total_seconds())} seconds ago, or "
                f"{otp.SENDS_PER_HOUR} times within the hour. Ask again in {max(1, round(wait))} seconds.",
                retry_after=wait,
            )
        self.requested.set()
        return _DETAILS[purpose]

    def dispatch_pending(self) -> int:
        """Sends the codes of a batch of recorded requests (to addresses whose account wants
        one: any account for a reset, an unverified one for verification) and forgets
        requests older than the counting window. Returns how many requests it handled.
        Replicas share the work: a batch is claimed with SKIP LOCKED on PostgreSQL."""
        now = self._clock()
        with self._db.transaction() as session:
            pending = session.scalars(
                select(CodeRequest)
                .where(CodeRequest.handled_at.is_(None))
                .order_by(CodeRequest.id)
                .limit(_DISPATCH_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            for request in pending:
                purpose = Purpose(request.purpose)
                user = _locked_user(session, request.email)
                if user is not None and (purpose is Purpose.RESET_PASSWORD or not user.email_verified):
                    self.send(session, user, purpose)
                request.handled_at = now
            session.execute(
                delete(CodeRequest).where(
                    CodeRequest.handled_at.is_not(None), CodeRequest.requested_at <= now - otp.REQUEST_WINDOW
                )
            )
        return len(pending)

    def verify_email(self, email: str, code: str) -> None:
        with self._db.transaction() as session:
            user = self._accept_code(session, _checked_email(email), Purpose.VERIFY_EMAIL, code)
            if user is not None and not user.email_verified:
                user.email_verified = True
                events.verified(session, user)
        if user is None:
            raise _invalid_code()

    def reset_password(self, email: str, code: str, new_password: str) -> None:
        """Sets the password and ends every session of the user (sessions.revoke_all)."""
        # Checks that need no account come first; the username check needs the account,
        # so it waits until the code proved the caller owns it.
        if problems := password_problems(new_password):
            raise invalid({"new_password": problems})
        email = _checked_email(email)
        # Hashed before the transaction, which holds the user's row (and on SQLite the
        # database's one write lock): every try costs one hash, as a login try does.
        password_hash = self._passwords.hash(new_password)
        with self._db.transaction() as session:
            user = self._accept_code(session, email, Purpose.RESET_PASSWORD, code)
            if user is not None:
                if problems := password_problems(new_password, user.username):
                    raise invalid({"new_password": problems})  # rolls back: the code stays usable
                user.password_hash = password_hash
                sessions.revoke_all(
                    session, user.id, self._clock(), reason="password_reset",
                    access_ttl_seconds=self._access_ttl,
                )
        if user is None:
            raise _invalid_code()

    def _accept_code(self, session: Session, email: str, purpose: Purpose, code: str) -> User | None:
        """The user whose valid code this is (now used up, with every other open code of
        the purpose), or None after a wrong try.

        The code is checked against each open code the caller's address has not burnt
        (otp.WRONG_TRIES_PER_ADDRESS, per client_ip_var); a wrong try is charged to each
        of them, per address and in total (otp.WRONG_TRIES_PER_CODE). With no open code
        it costs nobody anything. Either way it is recorded, so the answer writes the
        same whatever the address (and takes the same time).
        """
        now = self._clock()
        user = _locked_user(session, email)  # serialises guesses at one user's codes
        if not otp.well_formed(code):
            raise _invalid_code()  # cannot be right, so it costs no try
        client_ip = client_ip_var.get()
        tried = []
        for current in [] if user is None else _open_codes(session, user.id, purpose, now):
            key = attempts.code_try_key(current.id, client_ip)
            if not otp.address_may_try(len(attempts.failures_since(session, key, now - otp.LIFETIME))):
                continue  # burnt for this address: not even checked
            if self._mac.matches(current.code_mac, user.id, purpose, code):
                # Used up by a conditional UPDATE: it applies only while the code is still
                # open and unburnt, so the code is accepted once whatever runs beside this
                # (the row count says), with or without the row lock above.
                use_up = update(OtpCode).where(
                    OtpCode.id == current.id,
                    OtpCode.closed_at.is_(None),
                    OtpCode.wrong_attempts < otp.WRONG_TRIES_PER_CODE,
                )
                if _changed(session, use_up.values(closed_at=now)):
                    _close_open_codes(session, user.id, purpose, now)
                    return user
            else:
                tried.append((current.id, key))
        for code_id, key in tried:
            # Counted in SQL, so no concurrent wrong try is lost.
            count = update(OtpCode).where(OtpCode.id == code_id)
            _changed(session, count.values(wrong_attempts=OtpCode.wrong_attempts + 1))
            attempts.record_failure(session, key, now, keep=otp.LIFETIME)
        attempts.record_failure(session, attempts.code_key(purpose, email), now, keep=otp.LIFETIME)
        return None


def _checked_email(email: str) -> str:
    email = normalize_email(email)
    if problem := email_problem(email):
        raise invalid({"email": problem})
    return email


def _changed(session: Session, statement: Update) -> bool:
    """Runs an UPDATE (not reflected in loaded objects); whether it changed a row."""
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount > 0


def _locked_user(session: Session, email: str) -> User | None:
    """The user with this address, row-locked so their codes change one request at a time."""
    return session.scalar(select(User).where(User.email == email).with_for_update())


def _open_codes(session: Session, user_id: int, purpose: Purpose, now: dt.datetime) -> list[OtpCode]:
    """The user's codes of this purpose that are unused, unexpired and not burnt for
    everybody, newest first (at most the sends of one lifetime, otp.py)."""
    rows = session.scalars(
        select(OtpCode)
        .where(OtpCode.user_id == user_id, OtpCode.purpose == purpose.value, OtpCode.closed_at.is_(None))
        .order_by(OtpCode.id.desc())
    )
    return [row for row in rows if otp.CodeState(row.expires_at, row.wrong_attempts, False).usable(now)]


def _close_open_codes(session: Session, user_id: int, purpose: Purpose, now: dt.datetime) -> None:
    """A used code ends the others of its purpose: they were asked for the same thing."""
    session.execute(
        update(OtpCode)
        .where(OtpCode.user_id == user_id, OtpCode.purpose == purpose.value, OtpCode.closed_at.is_(None))
        .values(closed_at=now)
        .execution_options(synchronize_session=False)
    )


def _invalid_code() -> InvalidArgument:
    return InvalidArgument(
        "INVALID_OTP", "The code is wrong, expired or already used.",
        fields={"otp_code": "Wrong, expired or already used."},
    )
