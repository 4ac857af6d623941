"""Instant revocation: users.is_active, users.security_epoch, the revocations log.

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

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("security_epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "revocations",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sqlite_autoincrement=True,  # ids never reused (as every table since 0002)
    )
    op.create_index("ix_revocations_created_at", "revocations", ["created_at"])
    op.create_index("ix_revocations_expires_at", "revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_table("revocations")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("security_epoch")
        batch.drop_column("is_active")
