"""Known addresses: the clients a user last logged in from, which the per-account login
limit does not refuse (backoff.ACCOUNT; OWASP Authentication Cheat Sheet, "Account
Lockout": a lockout must not let an attacker deny the owner, and "Slow down online
guessing attacks with device cookies", of which this is the address-bound form).

A client is its common.client_ip.limit_key (an IPv4 address, an IPv6 /64). Each login
that issues tokens remembers its client, and only the newest KEEP per user are kept
(a user logging in from everywhere does not grow a list). A stranger cannot add one:
it takes the right password. Failures from a known client are still counted under
PAIR and ADDRESS, which bound a guesser there.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from common.db import dialect_insert
from user_svc.models import KnownAddress, User

KEEP = 5


def is_known(session: Session, username: str, client: str) -> bool:
    """Whether the user called `username` (exactly) logged in from `client` (a limit key)."""
    if not (username and client):
        return False
    found = session.scalar(
        select(KnownAddress.user_id)
        .join(User, User.id == KnownAddress.user_id)
        .where(User.username == username, KnownAddress.address == client)
        .limit(1)
    )
    return found is not None


def remember(session: Session, user_id: int, client: str, now: dt.datetime) -> None:
    """Records a login of `user_id` from `client` (a limit key) and forgets all but the
    newest KEEP of the user's clients. Concurrent logins from one client both succeed
    (an upsert)."""
    if not client:
        return
    insert = dialect_insert(session)
    statement = insert(KnownAddress).values(user_id=user_id, address=client, last_login_at=now)
    session.execute(statement.on_conflict_do_update(
        index_elements=[KnownAddress.user_id, KnownAddress.address],
        set_={"last_login_at": statement.excluded.last_login_at},
    ))
    newest = (
        select(KnownAddress.address)
        .where(KnownAddress.user_id == user_id)
        .order_by(KnownAddress.last_login_at.desc())
        .limit(KEEP)
    )
    session.execute(
        delete(KnownAddress).where(KnownAddress.user_id == user_id, KnownAddress.address.not_in(newest))
    )
