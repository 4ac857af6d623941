"""The user.* events, recorded to the outbox in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from taskmgr.events.v1 import events_pb2
from user_svc import otp
from user_svc.models import Outbox, User

SOURCE = "user_svc"


def registered(session: Session, user: User) -> None:
    payload = events_pb2.UserRegistered(user_id=user.id, username=user.username, email=user.email)
    _record(session, "taskmgr.user.registered", user, payload)


def verified(session: Session, user: User) -> None:
    payload = events_pb2.UserVerified(user_id=user.id, username=user.username, email=user.email)
    _record(session, "taskmgr.user.verified", user, payload)


def code_sent(session: Session, user: User, purpose: otp.Purpose, code: str) -> None:
    """The code travels only inside this event, to notify_svc, which emails it."""
    fields = {
        "user_id": user.id,
        "username": user.username,
        "email": user.email,
        "code": code,
        "lifetime_seconds": int(otp.LIFETIME.total_seconds()),
    }
    if purpose is otp.Purpose.VERIFY_EMAIL:
        _record(session, "taskmgr.user.otp_requested", user, events_pb2.OtpRequested(**fields))
    else:
        payload = events_pb2.PasswordResetRequested(**fields)
        _record(session, "taskmgr.user.password_reset_requested", user, payload)


def _record(session: Session, event_type: str, user: User, payload) -> None:  # noqa: ANN001
    Outbox.record(session, source=SOURCE, event_type=event_type, subject=str(user.id), payload=payload)
