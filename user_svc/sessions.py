"""Login sessions: password login with backoff, refresh-token rotation, logout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.client_ip import limit_key
from common.db import Database, serialize_on
from common.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from user_svc import attempts, backoff, known_addresses, refresh_rules, revocations
from user_svc.access_tokens import AccessTokens
from user_svc.identity import username_problem
from user_svc.models import RefreshToken, User
from user_svc.passwords import MAX_LENGTH, Passwords
from user_svc.refresh_rules import Verdict

_MAX_IP_LENGTH = 64
T = TypeVar("T")


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


class Sessions:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        access_tokens: AccessTokens,
        *,
        refresh_ttl_seconds: int,
        reuse_grace_seconds: int,
        successor_key: bytes,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._db = database
        self._passwords = passwords
        self._access = access_tokens
        self._refresh_ttl = dt.timedelta(seconds=refresh_ttl_seconds)
        self._grace = dt.timedelta(seconds=reuse_grace_seconds)
        self._successor_key = successor_key
        self._clock = clock

    def login(self, username: str, password: str, client_ip: str) -> TokenPair:
        # A username that cannot exist is not looked up, and not counted under its own key
        # (it could be any size); the client's IP still pays for the try.
        plausible = username_problem(username) is None and len(password) <= MAX_LENGTH
        keys = login_keys(username if plausible else "", client_ip)
        with self._db.transaction() as session:
            charged = charge_login_try(session, keys, self._clock())
            user = session.scalar(select(User).where(User.username == username)) if plausible else None
        # An unknown user costs a dummy hash too, so the timing does not tell them apart.
        right = judge_login_try(
            self._db, charged, lambda: self._passwords.verify(user.password_hash if user else None, password)
        )
        if not right:
            raise Unauthenticated("INVALID_CREDENTIALS", "Wrong username or password.")
        if not user.email_verified:
            with self._db.transaction() as session:
                attempts.forget(session, charged)
            raise PermissionDenied("EMAIL_NOT_VERIFIED", "Verify your email address before logging in.")
        if not user.is_active:
            with self._db.transaction() as session:
                attempts.forget(session, charged)
            raise PermissionDenied("ACCOUNT_DEACTIVATED", "This account was deactivated by staff.")
        # Parameters changed since this hash was made: store one with the current ones.
        needs_rehash = self._passwords.needs_rehash(user.password_hash)
        rehashed = self._passwords.hash(password) if needs_rehash else None
        with self._db.transaction() as session:
            attempts.forget(session, charged)
            if keys.client:  # the owner got it right from here: this client's count restarts
                pair, *_ = attempts.login_keys(username, keys.client)
                attempts.clear_failures(session, pair[0])
                known_addresses.remember(session, user.id, keys.client, self._clock())
            if rehashed:
                session.execute(update(User).where(User.id == user.id).values(password_hash=rehashed))
            family = refresh_rules.new_family_id()
            refresh = self._new_refresh_token(session, user.id, family)
        return self._pair(user, refresh, family)

    def refresh(self, token: str) -> TokenPair:
        """A new pair for a live refresh token, which is used up (see refresh_rules).

        Within the grace a repeat answers the same successor; the row lock (and, on
        SQLite, the writing transaction) makes concurrent repeats wait for the first.
        Raises UNAUTHENTICATED REFRESH_TOKEN_REUSED (family revoked) or INVALID_REFRESH_TOKEN.
        """
        now = self._clock()
        with self._db.transaction() as session:
            row = session.scalar(
                select(RefreshToken)
                .where(RefreshToken.token_hash == refresh_rules.digest(token))
                .with_for_update()
            )
            verdict = Verdict.INVALID
            if row is not None:
                state = refresh_rules.TokenState(row.expires_at, row.rotated_at, row.revoked_at)
                verdict = refresh_rules.judge(state, now, self._grace)
            refresh = refresh_rules.successor(self._successor_key, token)
            if verdict is Verdict.REUSED:
                self._revoke_family(session, row.user_id, row.family_id, now, reason="reused")
            elif verdict is Verdict.ROTATE and _mark_rotated(session, row.id, now):
                self._new_refresh_token(session, row.user_id, row.family_id, refresh)
            elif verdict in (Verdict.ROTATE, Verdict.GRACE) and not _live(session, refresh, now):
                verdict = Verdict.INVALID  # its successor was used or revoked: no second answer
            if verdict in (Verdict.ROTATE, Verdict.GRACE):
                user = session.get_one(User, row.user_id)
                if not user.is_active:  # deactivation revoked it too; a race ends here
                    verdict = Verdict.INVALID
        if verdict is Verdict.REUSED:
            raise Unauthenticated(
                "REFRESH_TOKEN_REUSED", "This refresh token was already used; log in again."
            )
        if verdict is Verdict.INVALID:
            raise Unauthenticated("INVALID_REFRESH_TOKEN", "The refresh token is not valid.")
        return self._pair(user, refresh, row.family_id)

    def revoke(self, token: str) -> None:
        """Logs out the token's family, and its access tokens everywhere (the session is
        revoked: user_svc.revocations). An unknown token answers the same: nothing to reveal."""
        with self._db.transaction() as session:
            found = session.execute(
                select(RefreshToken.user_id, RefreshToken.family_id)
                .where(RefreshToken.token_hash == refresh_rules.digest(token))
            ).first()
            if found is not None:
                self._revoke_family(session, found.user_id, found.family_id, self._clock(), reason="logout")

    def _revoke_family(
        self, session: Session, user_id: int, family_id: str, now: dt.datetime, *, reason: str
    ) -> None:
        """Revokes the family's refresh tokens and, the first time, its access tokens: the
        one place a session ends (logout, a used refresh token presented again)."""
        result = session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount:
            revocations.revoke_session(session, user_id, family_id, reason, self._access.ttl_seconds)

    def _new_refresh_token(
        self, session: Session, user_id: int, family_id: str, token: str | None = None
    ) -> str:
        now = self._clock()
        token = token or refresh_rules.new_token()
        session.add(
            RefreshToken(
                user_id=user_id,
                family_id=family_id,
                token_hash=refresh_rules.digest(token),
                issued_at=now,
                expires_at=now + self._refresh_ttl,
            )
        )
        return token

    def _pair(self, user: User, refresh: str, session_id: str) -> TokenPair:
        access = self._access.issue(
            user_id=user.id, username=user.username, email=user.email, is_staff=user.is_staff,
            session_id=session_id, epoch=user.security_epoch,
        )
        return TokenPair(access=access, refresh=refresh, expires_in=self._access.ttl_seconds)


@dataclass(frozen=True)
class LoginKeys:
    """Who a login try is counted against: the username tried ("" for none) and the
    client, as its limit key (common.client_ip.limit_key; "" when unknown)."""

    username: str
    client: str


def login_keys(username: str, client_ip: str) -> LoginKeys:
    """What a login try from `client_ip` at `username` is counted against (`charge_login_try`)."""
    return LoginKeys(username, limit_key(client_ip[:_MAX_IP_LENGTH]))


def charge_login_try(session: Session, keys: LoginKeys, now: dt.datetime) -> list[int]:
    """Checks the backoff of a login try and charges the try to its counters, before its
    password is judged: parallel tries cannot all pass the check first and be judged at
    once (a check-then-act), each one past the free failures waits. Each counter is
    checked and charged alone (common.db.serialize_on; in one order, so no deadlock).
    The counters are backoff's PAIR and ADDRESS, and ACCOUNT unless the account logged
    in from this client before (known_addresses): a distributed guesser cannot make the
    per-account limit refuse the owner where they log in.
    `session` is a Database.transaction(). Returns the charged failures, for
    `judge_login_try`. Raises RESOURCE_EXHAUSTED as `check_backoff`.
    """
    known = known_addresses.is_known(session, keys.username, keys.client)
    counters = attempts.login_keys(keys.username, keys.client, account=not known)
    for key, _free in sorted(counters):
        serialize_on(session, key)
    check_backoff(session, counters, now)
    charged = [attempts.record_failure(session, key, now, keep=backoff.WINDOW) for key, _free in counters]
    session.flush()
    return [failure.id for failure in charged]


def judge_login_try(database: Database, charged: Sequence[int], judge: Callable[[], T]) -> T:
    """`judge()` (the password check) of a try charged by `charge_login_try`. A wrong
    password keeps the charge as its failure; a try not judged at all (judge raised: an
    error, SERVER_BUSY) costs nothing; a right one costs nothing either, and its charge
    is forgotten (attempts.forget) by the caller in the transaction that acts on it."""
    try:
        return judge()
    except Exception:
        with database.transaction() as session:
            attempts.forget(session, charged)
        raise


def check_backoff(session: Session, keys: Sequence[tuple[str, int]], now: dt.datetime) -> None:
    """Raises RESOURCE_EXHAUSTED TOO_MANY_LOGIN_ATTEMPTS (RetryInfo: the longest wait)."""
    waits = [
        backoff.retry_after(attempts.failures_since(session, key, now - backoff.WINDOW), now, free)
        for key, free in keys
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise ResourceExhausted(
            "TOO_MANY_LOGIN_ATTEMPTS", "Too many failed logins; try again later.", retry_after=wait
        )


def revoke_all(
    session: Session, user_id: int, now: dt.datetime, *, reason: str, access_ttl_seconds: int
) -> int:
    """Ends every session of the user (password changed or reset, deactivation): revokes
    every refresh token and raises the security epoch, so every access token issued
    before is refused everywhere (user_svc.revocations). Returns the new epoch."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return revocations.end_sessions(session, user_id, reason, access_ttl_seconds)


def _mark_rotated(session: Session, token_id: int, now: dt.datetime) -> bool:
    """Marks the token rotated unless another request did first (the row count says)."""
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _live(session: Session, token: str, now: dt.datetime) -> bool:
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == refresh_rules.digest(token)))
    if row is None:
        return False
    return refresh_rules.judge(
        refresh_rules.TokenState(row.expires_at, row.rotated_at, row.revoked_at), now, dt.timedelta(0)
    ) is Verdict.ROTATE

