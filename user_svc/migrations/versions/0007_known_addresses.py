"""Known addresses: the clients each user last logged in from, which the per-account
login limit does not refuse (user_svc.known_addresses).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_addresses",
        sa.Column(
            "user_id", sa.BigInteger(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_known_addresses_user_id"),
            primary_key=True, autoincrement=False,
        ),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_known_addresses_user_last_login", "known_addresses", ["user_id", "last_login_at"]
    )


def downgrade() -> None:
    op.drop_table("known_addresses")
