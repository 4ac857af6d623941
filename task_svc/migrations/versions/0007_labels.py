"""Labels of projects and the labels tasks carry.

A label belongs to its project and a task's label to its task and its label (ON DELETE
CASCADE on all three). Names are unique per project under caseless matching: the
caseless form is its own column (`name_key`), computed by task_svc.labels, so the rule
is the same on PostgreSQL and SQLite. No task carries a label before this.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from common.id_reuse import NEVER_REUSE_IDS

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", sa.BigInteger(),
            sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_labels_project_id"), nullable=False,
        ),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("color", sa.String(7), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("project_id", "name_key", name="uq_labels_project_name_key"),
        **NEVER_REUSE_IDS,
    )
    op.create_table(
        "task_labels",
        sa.Column(
            "task_id", sa.BigInteger(),
            sa.ForeignKey("tasks.id", ondelete="CASCADE", name="fk_task_labels_task_id"), primary_key=True,
        ),
        sa.Column(
            "label_id", sa.BigInteger(),
            sa.ForeignKey("labels.id", ondelete="CASCADE", name="fk_task_labels_label_id"), primary_key=True,
        ),
    )
    op.create_index("ix_task_labels_label_id_task_id", "task_labels", ["label_id", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_task_labels_label_id_task_id", table_name="task_labels")
    op.drop_table("task_labels")
    op.drop_table("labels")
