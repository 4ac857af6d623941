"""Code requests: ResendOtp and ForgotPassword record the request, a dispatcher sends.

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
        "code_requests",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("handled_at", TIME, nullable=True),
        sqlite_autoincrement=True,  # ids never reused (as every table since 0002)
    )
    op.create_index("ix_code_requests_address", "code_requests", ["email", "purpose", "requested_at"])
    op.create_index("ix_code_requests_pending", "code_requests", ["handled_at", "id"])


def downgrade() -> None:
    op.drop_table("code_requests")
