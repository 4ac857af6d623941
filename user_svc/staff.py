"""The operator command that makes staff: the only way to become staff."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.db import utcnow
from user_svc import events
from user_svc.identity import email_problem, normalize_email, username_problem
from user_svc.models import User
from user_svc.passwords import password_problems
from user_svc.server import Domain


class StaffError(Exception):
    """The command cannot do what was asked; the message says why."""


def create_staff(domain: Domain, username: str, email: str, ask_password: Callable[[], str]) -> str:
    """Promotes the existing `username` (whose address must be `email`), or creates a
    verified staff account, asking for its password. Returns what was done."""
    email = normalize_email(email)
    with domain.database.transaction() as session:
        user = session.scalar(select(User).where(User.username == username).with_for_update())
        if user is not None:
            if user.email != email:
                raise StaffError(f"user {username!r} exists with another email address")
            user.is_staff = True
            return f"promoted {username!r} (id {user.id}) to staff"
    problems = [p for p in (username_problem(username), email_problem(email)) if p]
    if problems:
        raise StaffError("; ".join(problems))
    password = ask_password()
    if problems := password_problems(password, username):
        raise StaffError("password: " + " ".join(problems))
    password_hash = domain.passwords.hash(password)
    try:
        with domain.database.transaction() as session:
            if session.scalar(select(User.id).where(User.email == email)) is not None:
                raise StaffError(f"{email} belongs to another user")
            user = User(
                username=username, email=email, password_hash=password_hash, email_verified=True,
                is_staff=True, first_name="", last_name="", date_joined=utcnow(),
            )
            session.add(user)
            session.flush()
            events.registered(session, user)
            events.verified(session, user)
            return f"created staff user {username!r} (id {user.id})"
    except IntegrityError:
        # Registered by someone else between the checks and the insert (the unique
        # constraints decide): nothing was written.
        raise StaffError(f"{username!r} or {email} was registered meanwhile; run the command again") from None
