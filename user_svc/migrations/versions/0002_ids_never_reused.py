"""Ids are never reused on SQLite: its tables with integer ids become AUTOINCREMENT.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from common.id_reuse import stop_id_reuse_on_sqlite

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("users", "otp_codes", "refresh_tokens", "failed_attempts", "outbox"):
        stop_id_reuse_on_sqlite(table)


def downgrade() -> None:
    pass  # an id that is never reused stays correct under the older code
