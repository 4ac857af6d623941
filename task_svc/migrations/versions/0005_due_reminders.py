"""Due-date reminders: the due date each reminder was sent for, and the scheduler's index.

`due_soon_sent_for` and `overdue_sent_for` hold the due date a reminder was last sent
for (task_svc.reminders); existing tasks start with none sent. The partial index holds
the open tasks whose overdue notice is still to come (models.REMINDERS_PENDING). Plain
ADD COLUMN on both engines (SQLite adds a nullable column without a rebuild).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from common.id_reuse import NEVER_REUSE_IDS

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
# Frozen here: the model's constant may change in a later revision.
_PENDING = (
    "status IN ('pending', 'in_progress') AND due_date IS NOT NULL"
    " AND (overdue_sent_for IS NULL OR overdue_sent_for <> due_date)"
)


def upgrade() -> None:
    op.add_column("tasks", sa.Column("due_soon_sent_for", TIME, nullable=True))
    op.add_column("tasks", sa.Column("overdue_sent_for", TIME, nullable=True))
    op.create_index(
        "ix_tasks_reminders_due_date", "tasks", ["due_date"],
        postgresql_where=sa.text(_PENDING), sqlite_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_reminders_due_date", table_name="tasks")
    with op.batch_alter_table("tasks", table_kwargs=NEVER_REUSE_IDS) as batch:
        batch.drop_column("overdue_sent_for")
        batch.drop_column("due_soon_sent_for")
