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


def active_changed(session: Session, user: User) -> None:
    """Deactivated or reactivated (user.is_active). The version orders the changes of one
    user: every deactivation raises the security epoch (sessions.revoke_all), so
    2 x epoch (+1 when active) rises with each change, and a reactivation outranks the
    deactivation before it. Call after the epoch was raised and read back."""
    payload = events_pb2.UserActiveChanged(
        user_id=user.id, active=user.is_active, version=2 * user.security_epoch + int(user.is_active)
    )
    _record(session, "taskmgr.user.active_changed", user, payload)


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
