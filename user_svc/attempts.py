"""Storage of failed attempts (wrong passwords, wrong codes), keyed by what they count against."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from common.client_ip import limit_key
from user_svc import backoff
from user_svc.models import FailedAttempt
from user_svc.otp import Purpose


def login_keys(username: str, client_ip: str, *, account: bool = True) -> list[tuple[str, int]]:
    """The failure counters a login try is charged to, with their free failures (see
    backoff): PAIR, ADDRESS and, when `account`, ACCOUNT. The client is counted by its
    common.client_ip.limit_key (an IPv6 host by its /64); an empty username or address
    is not counted under its own key."""
    user, ip = username.lower(), limit_key(client_ip)
    keys = []
    if user and ip:
        keys.append((f"{backoff.PAIR.prefix}:{ip}|{user}", backoff.PAIR.free_failures))
    if ip:
        keys.append((f"{backoff.ADDRESS.prefix}:{ip}", backoff.ADDRESS.free_failures))
    if user and account:
        keys.append((f"{backoff.ACCOUNT.prefix}:{user}", backoff.ACCOUNT.free_failures))
    return keys


def code_key(purpose: Purpose, email: str) -> str:
    return f"code:{purpose.value}:{email}"


def code_try_key(code_id: int, client_ip: str) -> str:
    """Wrong tries at one code from one client (otp.WRONG_TRIES_PER_ADDRESS; an IPv6
    client by its /64, common.client_ip.limit_key)."""
    return f"code-try:{code_id}:{limit_key(client_ip)}"


def failures_since(session: Session, key: str, since: dt.datetime) -> list[dt.datetime]:
    rows = session.scalars(
        select(FailedAttempt.at).where(FailedAttempt.key == key, FailedAttempt.at > since)
    )
    return list(rows)


def record_failure(session: Session, key: str, now: dt.datetime, *, keep: dt.timedelta) -> FailedAttempt:
    """Adds a failure (returned, not yet flushed) and forgets this key's failures older
    than `keep`."""
    session.execute(delete(FailedAttempt).where(FailedAttempt.key == key, FailedAttempt.at <= now - keep))
    failure = FailedAttempt(key=key, at=now)
    session.add(failure)
    return failure


def forget(session: Session, failure_ids: Sequence[int]) -> None:
    """Deletes the given failures (a charged try that turned out right)."""
    if failure_ids:
        session.execute(delete(FailedAttempt).where(FailedAttempt.id.in_(failure_ids)))


def clear_failures(session: Session, key: str) -> None:
    session.execute(delete(FailedAttempt).where(FailedAttempt.key == key))
