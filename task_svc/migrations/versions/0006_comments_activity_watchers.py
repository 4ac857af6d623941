"""Comments, activity and watchers of tasks.

Each belongs to its task (ON DELETE CASCADE). Comments and activity entries have ids
of their own, never reused (AUTOINCREMENT on SQLite, as migration 0002); activity keeps
a deleted comment's id as a plain column. Every existing task is watched by its creator
and its assignee (the default for new tasks), and has no activity before this.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from common.id_reuse import NEVER_REUSE_IDS

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def _task_id(table: str, **kwargs) -> sa.Column:  # noqa: ANN003
    return sa.Column(
        "task_id", sa.BigInteger(),
        sa.ForeignKey("tasks.id", ondelete="CASCADE", name=f"fk_{table}_task_id"), nullable=False, **kwargs,
    )


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _task_id("comments"),
        sa.Column("author", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_comments_task_id_id", "comments", ["task_id", "id"])
    op.create_table(
        "task_activity",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _task_id("task_activity"),
        sa.Column("actor", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("field", sa.String(30), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_task_activity_task_id_id", "task_activity", ["task_id", "id"])
    op.create_table(
        "task_watchers",
        _task_id("task_watchers", primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("staff", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    # The default watchers of the tasks that exist: creator and assignee.
    op.execute(
        "INSERT INTO task_watchers (task_id, user_id, staff, created_at)"
        " SELECT id, created_by, false, updated_at FROM tasks"
    )
    op.execute(
        "INSERT INTO task_watchers (task_id, user_id, staff, created_at)"
        " SELECT id, assigned_to, false, updated_at FROM tasks"
        " WHERE assigned_to IS NOT NULL AND assigned_to <> created_by"
    )


def downgrade() -> None:
    op.drop_table("task_watchers")
    op.drop_index("ix_task_activity_task_id_id", table_name="task_activity")
    op.drop_table("task_activity")
    op.drop_index("ix_comments_task_id_id", table_name="comments")
    op.drop_table("comments")
