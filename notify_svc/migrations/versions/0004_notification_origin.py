"""Each notification names the event's source, subject and request id, so the
notifications one task caused are found by its id (issue 14 section 2).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("event_source", sa.String(50), nullable=False, server_default=""))
        batch.add_column(sa.Column("event_subject", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("request_id", sa.String(100), nullable=False, server_default=""))
    op.create_index(
        "ix_notifications_source_subject_id", "notifications", ["event_source", "event_subject", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_source_subject_id", "notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("request_id")
        batch.drop_column("event_subject")
        batch.drop_column("event_source")
