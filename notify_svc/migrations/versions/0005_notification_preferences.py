"""notify_svc's copy of each user's notification settings (notify_svc.preferences).

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
        "notification_preferences",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *(sa.Column(kind, sa.Boolean(), nullable=False) for kind in KINDS),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
