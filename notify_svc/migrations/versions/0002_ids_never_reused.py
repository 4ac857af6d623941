"""Ids are never reused on SQLite: the notification log becomes AUTOINCREMENT.

(recipients are keyed by user_svc's user ids and handled_events by event ids: neither
hands out ids of its own.)

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
    stop_id_reuse_on_sqlite("notifications")


def downgrade() -> None:
    pass  # an id that is never reused stays correct under the older code
