"""user_svc's tables: accounts, one-time codes, refresh tokens, failed attempts, the
addresses users logged in from, outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, text, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigIntPK, UTCDateTime, utcnow
from common.id_reuse import NEVER_REUSE_IDS
from common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    # On PostgreSQL only, text_pattern_ops indexes for ListUsers' prefix search
    # (migration 0006, accounts.directory_query): SQLite uses no index for such a LIKE.
    __table_args__ = (
        Index("ix_users_username_lower_prefix", text("lower(username) text_pattern_ops")).ddl_if(
            dialect="postgresql"
        ),
        Index("ix_users_email_prefix", "email", postgresql_ops={"email": "text_pattern_ops"}).ddl_if(
            dialect="postgresql"
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # Case-sensitive, as in the system this replaces.
    username: Mapped[str] = mapped_column(String(150), unique=True)
    # Stored lower-cased, so uniqueness is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # False once staff deactivated the account: no login, no refresh (DeactivateUser).
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Raised to end every session at once (password change or reset, deactivation):
    # access tokens carry it as `epoch`, and verifiers refuse lower ones (common.revocation).
    security_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    date_joined: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OtpCode(Base):
    """One emailed code. Old rows stay (cancelled or used) to count sends per hour."""

    __tablename__ = "otp_codes"
    __table_args__ = (
        Index("ix_otp_codes_user_purpose_created", "user_id", "purpose", "created_at"), NEVER_REUSE_IDS
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    # HMAC-SHA256 of user id, purpose and code; the code itself is never stored.
    code_mac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    wrong_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the code was accepted, or replaced by a newer one.
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Every token rotated from one login shares the family; reuse revokes it whole.
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    # SHA-256 of the opaque token (it has 256 random bits, so no salt or slow hash is needed).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FailedAttempt(Base):
    """One failed login or wrong code, counted per key ("login-user:alice", ...).

    Append-only rows (no counters to update) so concurrent failures never race.
    """

    __tablename__ = "failed_attempts"
    __table_args__ = (Index("ix_failed_attempts_key_at", "key", "at"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class KnownAddress(Base):
    """A client a user logged in from (user_svc.known_addresses): the per-account login
    limit does not refuse a try from it. The last few per user."""

    __tablename__ = "known_addresses"
    __table_args__ = (Index("ix_known_addresses_user_last_login", "user_id", "last_login_at"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE", name="fk_known_addresses_user_id"),
        primary_key=True, autoincrement=False,
    )
    # The client's limit key (common.client_ip.limit_key): an IPv4 address or an IPv6 /64.
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_login_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CodeRequest(Base):
    """A code asked for an address (ResendOtp, ForgotPassword), registered or not.

    The request path only adds this row, the same for every address, so its answer does
    not depend on registration in status, body or time; user_svc.code_dispatch sends the
    code afterwards. Rows of the last hour count the requests per address.
    """

    __tablename__ = "code_requests"
    __table_args__ = (
        Index("ix_code_requests_address", "email", "purpose", "requested_at"),
        Index("ix_code_requests_pending", "handled_at", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(20))
    # As submitted, normalised (lower-cased): need not belong to anybody.
    email: Mapped[str] = mapped_column(String(254))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set once the dispatcher has sent the code, or found nobody to send it to.
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Revocation(Base):
    """A revocation verifiers must know until `expires_at` (when the last access token it
    refuses expires): one ended session (`session_id`) or a raised epoch (`epoch`).
    Read by WatchRevocations and GetRevocations (user_svc.revocations); pruned once expired."""

    __tablename__ = "revocations"
    __table_args__ = (
        Index("ix_revocations_created_at", "created_at"),
        Index("ix_revocations_expires_at", "expires_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigIntPK)
    session_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NotificationSetting(Base):
    """Which kinds of notification are emailed to a user (user_svc.notification_settings);
    a user without a row has every kind on."""

    __tablename__ = "notification_settings"

    # BIGINT on SQLite too: a user's id, never a rowid of this table.
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE", name="fk_notification_settings_user_id"),
        primary_key=True, autoincrement=False,
    )
    assignment: Mapped[bool] = mapped_column(Boolean, default=True)
    status_changes: Mapped[bool] = mapped_column(Boolean, default=True)
    comments: Mapped[bool] = mapped_column(Boolean, default=True)
    due_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    project_membership: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised by one per change; the event carries it so notify_svc's copy keeps the newest.
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
