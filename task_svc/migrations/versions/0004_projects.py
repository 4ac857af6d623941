"""Projects: a task list a team shares, its members and their roles; tasks.project_id.

The per-user task indexes become partial, of personal tasks (WHERE project_id IS NULL):
the personal branches of the task list ask for "created_by = me AND project_id IS
NULL" (and the same for the assignee) in (created_at, id) order, which the old indexes
could only filter, row by row. Project tasks are read per project, (project_id,
created_at, id).
On SQLite the new tables are AUTOINCREMENT (ids never reused, as migration 0002), and
tasks is rebuilt to hold its foreign key, keeping its AUTOINCREMENT.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from common.id_reuse import NEVER_REUSE_IDS

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)

_OLD_USER_INDEXES = {
    "ix_tasks_created_by_created_at": ["created_by", "created_at", "id"],
    "ix_tasks_assigned_to_created_at": ["assigned_to", "created_at", "id"],
    "ix_tasks_created_by_status_created_at": ["created_by", "status", "created_at", "id"],
    "ix_tasks_assigned_to_status_created_at": ["assigned_to", "status", "created_at", "id"],
}
_PERSONAL = {"postgresql_where": sa.text("project_id IS NULL"), "sqlite_where": sa.text("project_id IS NULL")}
# name -> (columns, partial: personal tasks only)
_NEW_INDEXES = {
    "ix_tasks_personal_created_by_created_at": (["created_by", "created_at", "id"], True),
    "ix_tasks_personal_assigned_to_created_at": (["assigned_to", "created_at", "id"], True),
    "ix_tasks_personal_created_by_status_created_at": (["created_by", "status", "created_at", "id"], True),
    "ix_tasks_personal_assigned_to_status_created_at": (["assigned_to", "status", "created_at", "id"], True),
    "ix_tasks_project_created_at": (["project_id", "created_at", "id"], False),
    "ix_tasks_project_status_created_at": (["project_id", "status", "created_at", "id"], False),
}


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        **NEVER_REUSE_IDS,
    )
    op.create_table(
        "project_members",
        sa.Column(
            "project_id", sa.BigInteger(),
            sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_project_members_project_id"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint("role IN ('owner', 'member', 'viewer')", name="ck_project_members_role"),
    )
    op.create_index("ix_project_members_user_id", "project_members", ["user_id", "project_id"])
    for name in _OLD_USER_INDEXES:
        op.drop_index(name, table_name="tasks")
    remembered = _sqlite_sequence("tasks")
    with op.batch_alter_table("tasks", table_kwargs=NEVER_REUSE_IDS) as batch:
        batch.add_column(sa.Column("project_id", sa.BigInteger(), nullable=True))
        batch.create_foreign_key(
            "fk_tasks_project_id", "projects", ["project_id"], ["id"], ondelete="RESTRICT"
        )
    _keep_sqlite_sequence("tasks", remembered)
    for name, (columns, personal) in _NEW_INDEXES.items():
        op.create_index(name, "tasks", columns, **(_PERSONAL if personal else {}))


def _sqlite_sequence(name: str) -> int | None:
    """SQLite: the highest id `name` ever handed out (sqlite.org/autoinc.html)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    return bind.scalar(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": name})


def _keep_sqlite_sequence(name: str, remembered: int | None) -> None:
    """A rebuilt table's sequence starts from its rows' highest id: put back the one it
    had (above ids deleted since, which migration 0002 made sure are never reused)."""
    if remembered is None:
        return
    highest = max(remembered, _sqlite_sequence(name) or 0)
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name})
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
        {"name": name, "seq": highest},
    )


def downgrade() -> None:
    for name in _NEW_INDEXES:
        op.drop_index(name, table_name="tasks")
    remembered = _sqlite_sequence("tasks")
    with op.batch_alter_table("tasks", table_kwargs=NEVER_REUSE_IDS) as batch:
        batch.drop_constraint("fk_tasks_project_id", type_="foreignkey")
        batch.drop_column("project_id")
    _keep_sqlite_sequence("tasks", remembered)
    for name, columns in _OLD_USER_INDEXES.items():
        op.create_index(name, "tasks", columns)
    op.drop_table("project_members")
    op.drop_table("projects")
