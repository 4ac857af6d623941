"""Notification settings: which kinds of notification are emailed to each user.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS = ("assignment", "status_changes", "comments", "due_reminders", "project_membership")


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column(
            "user_id", sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_notification_settings_user_id"),
            primary_key=True, autoincrement=False,
        ),
        *(sa.Column(kind, sa.Boolean(), nullable=False) for kind in KINDS),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("notification_settings")
