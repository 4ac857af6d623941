"""Accounts: registration, profiles, the user directory, password changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.auth import Claims
from common.contract_rules import string_rules
from common.db import Database
from common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    invalid,
)
from common.paging import PageTokens, page_size
from common.validation import text_problem
from taskmgr.user.v1 import user_service_pb2 as pb
from user_svc import attempts, events, sessions
from user_svc.email_codes import EmailCodes
from user_svc.identity import email_problem, normalize_email, username_problem
from user_svc.models import User
from user_svc.otp import Purpose
from user_svc.passwords import Passwords, password_problems

NAME_MAX_LENGTH = string_rules(pb.UpdateProfileRequest.DESCRIPTOR, "first_name").max_len
_LIST_QUERY = {"list": "users"}
Q_MAX_LENGTH = string_rules(pb.ListUsersRequest.DESCRIPTOR, "q").max_len


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    next_page_token: str


class Accounts:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        codes: EmailCodes,
        page_tokens: PageTokens,
        clock: Callable[[], dt.datetime],
        *,
        access_ttl_seconds: int,
    ) -> None:
        """`access_ttl_seconds`: how long ending sessions must keep refusing old tokens."""
        self._access_ttl = access_ttl_seconds
        self._db = database
        self._passwords = passwords
        self._codes = codes
        self._page_tokens = page_tokens
        self._clock = clock

    def register(self, username: str, email: str, password: str) -> User:
        """A new, unverified account; its verification code goes out in an event."""
        email = normalize_email(email)
        problems = {
            "username": username_problem(username),
            "email": email_problem(email),
            "password": password_problems(password, username) or None,
        }
        if any(problems.values()):
            raise invalid({field: problem for field, problem in problems.items() if problem})
        with self._db.read() as session:
            _refuse_taken(session, username, email)
        password_hash = self._passwords.hash(password)
        try:
            with self._db.transaction() as session:
                user = User(
                    username=username, email=email, password_hash=password_hash,
                    email_verified=False, is_staff=False, first_name="", last_name="",
                    date_joined=self._clock(),
                )
                session.add(user)
                session.flush()
                events.registered(session, user)
                self._codes.send(session, user, Purpose.VERIFY_EMAIL)
        except IntegrityError:
            # Someone took the name or address between the check and the insert.
            with self._db.read() as session:
                _refuse_taken(session, username, email)
            raise
        return user

    def profile(self, caller: Claims) -> User:
        with self._db.read() as session:
            return _caller(session, caller)

    def update_profile(self, caller: Claims, *, first_name: str | None, last_name: str | None) -> User:
        changes = {name: value for name, value in (("first_name", first_name), ("last_name", last_name))
                   if value is not None}
        problems = {name: text_problem(value, max_length=NAME_MAX_LENGTH) for name, value in changes.items()}
        if any(problems.values()):
            raise invalid({name: problem for name, problem in problems.items() if problem})
        with self._db.transaction() as session:
            user = _caller(session, caller)
            for name, value in changes.items():
                setattr(user, name, value)
        return user

    def list_users(
        self, requested_page_size: int, page_token: str, q: str = "", *, staff: bool = False
    ) -> UserPage:
        """Users in id order, keyset-paged: for `staff` every account, for anyone else the
        verified, active ones only (directory_query). With `q`, those whose username (for
        `staff`, or email) starts with `q`, case-insensitively (an assignee picker): `%`
        and `_` in it match only themselves."""
        size = page_size(requested_page_size)
        if problem := text_problem(q, max_length=Q_MAX_LENGTH):
            raise invalid({"q": problem})
        fingerprint = _LIST_QUERY | ({"q": q.lower(), "staff": staff} if q else {})
        # The token is signed by us, so the position in it is the id we put there.
        after = self._page_tokens.decode(page_token, fingerprint) or 0
        with self._db.read() as session:
            users = list(session.scalars(directory_query(after, q, staff=staff, limit=size + 1)))
        more = len(users) > size
        users = users[:size]
        token = self._page_tokens.encode(users[-1].id, fingerprint) if more else ""
        return UserPage(users, token)

    def lookup_user(self, username: str, *, staff: bool = False) -> User:
        """The user called `username`: the exact name, else the one name equal to it
        ignoring case, among the accounts the caller may see (`listable`). NOT_FOUND
        USER_NOT_FOUND otherwise, the same answer as for a name nobody has."""
        with self._db.read() as session:
            user = session.scalar(select(User).where(User.username == username, *listable(staff)))
            if user is None:
                alike = list(session.scalars(
                    select(User).where(func.lower(User.username) == username.lower(), *listable(staff))
                    .limit(2)
                ))
                user = alike[0] if len(alike) == 1 else None
        if user is None:
            raise NotFound("USER_NOT_FOUND", "No such user.")
        return user

    def get_user(self, user_id: int, *, staff: bool = False) -> User:
        """The user `user_id` if the caller may see them (`listable`); NOT_FOUND
        USER_NOT_FOUND otherwise, the same answer as for an id nobody has."""
        with self._db.read() as session:
            user = session.get(User, user_id) if user_id > 0 else None
        if user is None or not (staff or (user.email_verified and user.is_active)):
            raise NotFound("USER_NOT_FOUND", "No such user.")
        return user

    def change_password(self, caller: Claims, old_password: str, new_password: str, client_ip: str) -> None:
        """Sets a new password and ends every session of the caller (sessions.revoke_all).

        Wrong old passwords count as failed logins, so a stolen access token cannot be
        used to guess the password at full speed.
        """
        if problems := password_problems(new_password, caller.username):
            raise invalid({"new_password": problems})
        keys = sessions.login_keys(caller.username, client_ip)
        with self._db.transaction() as session:
            charged = sessions.charge_login_try(session, keys, self._clock())
            user = _caller(session, caller)

        def new_hash_if_right() -> str | None:
            if not self._passwords.verify(user.password_hash, old_password):
                return None
            return self._passwords.hash(new_password)

        new_hash = sessions.judge_login_try(self._db, charged, new_hash_if_right)
        if new_hash is None:
            raise InvalidArgument(
                "WRONG_PASSWORD", "The old password is wrong.", fields={"old_password": "Wrong password."}
            )
        with self._db.transaction() as session:
            attempts.forget(session, charged)
            _caller(session, caller).password_hash = new_hash
            sessions.revoke_all(
                session, caller.user_id, self._clock(), reason="password_changed",
                access_ttl_seconds=self._access_ttl,
            )

    def set_active(self, caller: Claims, user_id: int, active: bool) -> User:
        """Deactivates (ending every session of the user: sessions.revoke_all; no login,
        no refresh) or reactivates a user. Staff only (PERMISSION_DENIED STAFF_ONLY), never
        the caller themself (FAILED_PRECONDITION CANNOT_DEACTIVATE_SELF: staff cannot lock
        themselves out, or undo another's decision about them); NOT_FOUND USER_NOT_FOUND.
        A change records taskmgr.user.active_changed (notify_svc then emails a deactivated
        account nothing). Setting the state it already has changes nothing and ends no
        session."""
        if not caller.is_staff:
            raise PermissionDenied("STAFF_ONLY", "Only staff may deactivate or reactivate users.")
        if user_id == caller.user_id:
            raise FailedPrecondition(
                "CANNOT_DEACTIVATE_SELF", "You cannot deactivate or reactivate your own account."
            )
        with self._db.transaction() as session:
            user = session.get(User, user_id, with_for_update=True) if user_id > 0 else None
            if user is None:
                raise NotFound("USER_NOT_FOUND", "No such user.")
            if user.is_active != active:
                user.is_active = active
                if not active:
                    session.flush()
                    sessions.revoke_all(
                        session, user.id, self._clock(), reason="deactivated",
                        access_ttl_seconds=self._access_ttl,
                    )
                    session.refresh(user)
                events.active_changed(session, user)
        return user


def directory_query(after: int, q: str, *, staff: bool, limit: int) -> Select:
    """Up to `limit` users with an id above `after`, in id order; with `q`, those whose
    username (for `staff`, or email) starts with `q`, case-insensitively.

    Anyone but staff sees the verified, active accounts only: the people they can add to
    a project or assign a task to. An unverified sign-up (an address nobody confirmed,
    perhaps somebody else's, under a name that may impersonate) and a deactivated
    account are nobody's business but staff's (OWASP API Security Top 10 2023, API3, which
    took in 2019's Excessive Data Exposure: return only what the caller needs). Others'
    emails are the service's to leave out (service.may_see_email).

    On PostgreSQL the prefix is an index range: `lower(username) LIKE 'q%'` on
    ix_users_username_lower_prefix, `email LIKE 'q%'` on ix_users_email_prefix (emails are
    stored lower-cased, so the address is matched as stored), both text_pattern_ops, which
    serve LIKE prefixes whatever the database's collation (migration 0006). The pattern is
    planned as a known value: user_svc's plans are custom ones (no force_generic_plan),
    and a generic plan could not turn a parameter's prefix into a range."""
    query = select(User).where(User.id > after, *listable(staff))
    if q:
        prefix = _escape_like(q.lower()) + "%"
        matches = [func.lower(User.username).like(prefix, escape="\\")]
        if staff:
            matches.append(User.email.like(prefix, escape="\\"))
        query = query.where(or_(*matches))
    return query.order_by(User.id).limit(limit)


def listable(staff: bool) -> tuple:
    """The conditions on the users a caller may see (in ListUsers, GetUser, LookupUser):
    none for staff; the verified, active accounts for anyone else, so that to them an
    unverified sign-up or a deactivated account is answered exactly as a user nobody has
    (directory_query says why; docs/security.md "Who sees which accounts")."""
    return () if staff else (User.email_verified.is_(True), User.is_active.is_(True))


def _escape_like(text: str) -> str:
    for special in ("\\", "%", "_"):
        text = text.replace(special, "\\" + special)
    return text


def may_see_email(caller: Claims, user: User) -> bool:
    return caller.is_staff or caller.user_id == user.id


def _caller(session: Session, caller: Claims) -> User:
    user = session.get(User, caller.user_id)
    if user is None:
        raise NotFound("USER_NOT_FOUND", "The account of this token no longer exists.")
    return user


def _refuse_taken(session: Session, username: str, email: str) -> None:
    if session.scalar(select(exists().where(User.username == username))):
        raise AlreadyExists("USERNAME_TAKEN", "This username is taken.", fields={"username": "Taken."})
    if session.scalar(select(exists().where(User.email == email))):
        raise AlreadyExists(
            "EMAIL_TAKEN", "This email address is already registered.",
            fields={"email": "Already registered."},
        )
