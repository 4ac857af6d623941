"""Tasks, idempotency keys, outbox.

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
        "tasks",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", TIME, nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("assigned_to", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'done', 'cancelled')", name="ck_tasks_status"
        ),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name="ck_tasks_priority"),
    )
    op.create_index("ix_tasks_created_by_created_at", "tasks", ["created_by", "created_at", "id"])
    op.create_index("ix_tasks_assigned_to_created_at", "tasks", ["assigned_to", "created_at", "id"])
    op.create_index(
        "ix_tasks_created_by_status_created_at", "tasks", ["created_by", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_tasks_assigned_to_status_created_at", "tasks", ["assigned_to", "status", "created_at", "id"]
    )
    op.create_index("ix_tasks_created_at", "tasks", ["created_at", "id"])
    op.create_index("ix_tasks_status_created_at", "tasks", ["status", "created_at", "id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("created_by", "request_id", name="uq_idempotency_keys_owner_key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])

    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("idempotency_keys")
    op.drop_table("tasks")
