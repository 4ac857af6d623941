"""task_svc's tables: projects and their members, tasks, their comments, activity and
watchers, idempotency keys of creates, and the event outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import BigIntPK, UTCDateTime, utcnow
from common.id_reuse import NEVER_REUSE_IDS
from common.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class Project(Base):
    """A task list a team shares (task_svc.projects)."""

    __tablename__ = "projects"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Optimistic concurrency, as for tasks.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}


class ProjectMember(Base):
    """A user's role in a project (task_svc.memberships)."""

    __tablename__ = "project_members"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'member', 'viewer')", name="ck_project_members_role"),
        # "The projects I am a member of": the task list's project branch starts here.
        Index("ix_project_members_user_id", "user_id", "project_id"),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE", name="fk_project_members_project_id"),
        primary_key=True,
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Label(Base):
    """A label of a project's tasks (task_svc.labels)."""

    __tablename__ = "labels"
    __table_args__ = (
        # One name per project under caseless matching: `name_key` is the name's
        # caseless form (task_svc.labels.name_key), the same on both engines.
        UniqueConstraint("project_id", "name_key", name="uq_labels_project_name_key"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE", name="fk_labels_project_id")
    )
    name: Mapped[str] = mapped_column(String(50))
    name_key: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskLabel(Base):
    """A label a task carries (task_svc.task_labels); goes with the task or the label."""

    __tablename__ = "task_labels"
    __table_args__ = (
        # The primary key (task_id, label_id) answers "does this task carry label L"
        # (the list's label filter, an EXISTS per label); this one "which tasks carry L".
        Index("ix_task_labels_label_id_task_id", "label_id", "task_id"),
    )

    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", ondelete="CASCADE", name="fk_task_labels_task_id"),
        primary_key=True,
    )
    label_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("labels.id", ondelete="CASCADE", name="fk_task_labels_label_id"),
        primary_key=True,
    )


# A partial index of personal tasks (both engines).
_PERSONAL = {"postgresql_where": text("project_id IS NULL"), "sqlite_where": text("project_id IS NULL")}
# The reminder scheduler's work (task_svc.reminders): open tasks with a due date whose
# overdue notice has not been sent for that date. The scheduler's queries carry this very
# text, so both engines prove the partial index usable; it holds the tasks still to be
# reminded, not every task ever overdue.
REMINDERS_PENDING = (
    "status IN ('pending', 'in_progress') AND due_date IS NOT NULL"
    " AND (overdue_sent_for IS NULL OR overdue_sent_for <> due_date)"
)
_REMINDERS_PENDING = {"postgresql_where": text(REMINDERS_PENDING), "sqlite_where": text(REMINDERS_PENDING)}


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'in_progress', 'done', 'cancelled')", name="ck_tasks_status"),
        CheckConstraint("priority BETWEEN 1 AND 4", name="ck_tasks_priority"),
        # The visibility rule is "a personal task I created or am assigned to, or a task
        # of a project I am a member of"; the listing reads each branch from its own
        # index in (created_at, id) order (the personal ones partial, WHERE project_id
        # IS NULL), so a page costs the same however many tasks exist. B-trees scan
        # backwards, so one index serves both directions.
        Index("ix_tasks_personal_created_by_created_at", "created_by", "created_at", "id", **_PERSONAL),
        Index("ix_tasks_personal_assigned_to_created_at", "assigned_to", "created_at", "id", **_PERSONAL),
        Index(
            "ix_tasks_personal_created_by_status_created_at", "created_by", "status", "created_at", "id",
            **_PERSONAL,
        ),
        Index(
            "ix_tasks_personal_assigned_to_status_created_at", "assigned_to", "status", "created_at", "id",
            **_PERSONAL,
        ),
        Index("ix_tasks_project_created_at", "project_id", "created_at", "id"),
        Index("ix_tasks_project_status_created_at", "project_id", "status", "created_at", "id"),
        # Staff see everything: the plain listing, and by status.
        Index("ix_tasks_created_at", "created_at", "id"),
        Index("ix_tasks_status_created_at", "status", "created_at", "id"),
        Index("ix_tasks_reminders_due_date", "due_date", **_REMINDERS_PENDING),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    # The rank (low 1 .. urgent 4), so ordering by priority is ordering by this column.
    priority: Mapped[int] = mapped_column(SmallInteger)
    due_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The due date each reminder was last sent for (task_svc.reminders): a reminder is due
    # again only when the due date differs, so a changed date re-arms both and a restart
    # or a second scheduler never sends one twice. Not part of the task's version.
    due_soon_sent_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    overdue_sent_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # User ids of user_svc: another service's data, so no foreign key.
    created_by: Mapped[int] = mapped_column(BigInteger)
    assigned_to: Mapped[int | None] = mapped_column(BigInteger)
    # NULL: a personal task. A project holding tasks cannot be deleted (RESTRICT).
    project_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="RESTRICT", name="fk_tasks_project_id")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Optimistic concurrency: the ORM adds "WHERE version = <loaded>" to every UPDATE
    # and DELETE and increments it, so a concurrent change makes the flush fail.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}


class IdempotencyKey(Base):
    """A create made with a request_id: a repeat within 24 h answers its first reply."""

    __tablename__ = "idempotency_keys"
    # The unique constraint is what makes two concurrent creates with one key safe.
    __table_args__ = (
        UniqueConstraint("created_by", "request_id", name="uq_idempotency_keys_owner_key"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    created_by: Mapped[int] = mapped_column(BigInteger)
    request_id: Mapped[str] = mapped_column(String(255))
    # sha256 of the normalized request, so the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int] = mapped_column(BigInteger)
    # The task as the create answered it (task_svc.idempotency.snapshot); NULL for keys
    # stored before migration 0003.
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# A task's comments, activity and watchers go with it (ON DELETE CASCADE; SQLite's
# foreign keys are on: common.db).
_TASK_FK = {"ondelete": "CASCADE"}


class Comment(Base):
    """A comment on a task (task_svc.collaboration)."""

    __tablename__ = "comments"
    __table_args__ = (
        # A task's comments, oldest first, keyset-paged by id.
        Index("ix_comments_task_id_id", "task_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", name="fk_comments_task_id", **_TASK_FK)
    )
    author: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """One change of a task, written in the transaction of the change (task_svc.activity)."""

    __tablename__ = "task_activity"
    __table_args__ = (
        Index("ix_task_activity_task_id_id", "task_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", name="fk_task_activity_task_id", **_TASK_FK)
    )
    actor: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    field: Mapped[str | None] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    # Not a foreign key: the entry outlives a deleted comment.
    comment_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Watcher(Base):
    """A user who is told about a task's changes (task_svc.watchers)."""

    __tablename__ = "task_watchers"

    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tasks.id", name="fk_task_watchers_task_id", **_TASK_FK), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The watcher was staff when they chose to watch: staff see every task, and task_svc
    # knows who is staff only from a caller's token.
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
