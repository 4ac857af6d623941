"""An idempotency key keeps the first reply, so a replay answers it again.

A replay used to look the task up again by id: after a delete (and, on SQLite, the id's
reuse) it showed a later state, or another user's task. Keys stored before this
revision have no reply (NULL): task_svc.idempotency answers them as before, but only
with the caller's own task made no later than the key.

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


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response")
