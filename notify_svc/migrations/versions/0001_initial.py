"""Recipient directory, handled events, notification log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "handled_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("handled_at", TIME, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient_user_id", sa.BigInteger(), nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.UniqueConstraint("event_id", "recipient_user_id", name="uq_notifications_event_recipient"),
    )
    op.create_index("ix_notifications_recipient_id", "notifications", ["recipient_user_id", "id"])
    op.create_index("ix_notifications_event_type_id", "notifications", ["event_type", "id"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("handled_events")
    op.drop_table("recipients")
