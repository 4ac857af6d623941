"""Ids are never reused on SQLite: its tables become AUTOINCREMENT.

A deleted task's id was handed out again on SQLite, and a replayed create answered
whatever task had it now. The task sequence also starts above every task id an
idempotency key remembers (such a task may have been deleted since).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from common.id_reuse import stop_id_reuse_on_sqlite

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stop_id_reuse_on_sqlite("tasks", ids_in=[("idempotency_keys", "task_id")])
    stop_id_reuse_on_sqlite("idempotency_keys")
    stop_id_reuse_on_sqlite("outbox")


def downgrade() -> None:
    pass  # an id that is never reused stays correct under the older code
