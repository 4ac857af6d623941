"""Dead letters of the embedded default (no broker): events notify_svc refused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TIME, nullable=False),
        sa.Column("last_failure_at", TIME, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dead_letters_event_id", "dead_letters", ["event_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
