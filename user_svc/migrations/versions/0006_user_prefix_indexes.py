"""Indexes for the user directory's prefix search (ListUsers q=, an assignee picker):
lower(username) and email, text_pattern_ops, so `LIKE 'q%'` is an index range on
PostgreSQL whatever the database's collation (a plain index serves LIKE only under the
C collation). PostgreSQL only: SQLite uses no index for LIKE on an expression, and its
directory is a development one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_users_username_lower_prefix", "users", [sa.text("lower(username) text_pattern_ops")]
    )
    op.create_index(
        "ix_users_email_prefix", "users", ["email"], postgresql_ops={"email": "text_pattern_ops"}
    )
    # The statistics of lower(username) exist only once ANALYZE has read them; without
    # them PostgreSQL takes any prefix to match 0.5% of users and walks the primary key
    # instead. Autovacuum analyzes a table after enough of it changed, which a settled
    # user table may not do for a long time.
    op.execute("ANALYZE users")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_users_email_prefix", table_name="users")
    op.drop_index("ix_users_username_lower_prefix", table_name="users")
