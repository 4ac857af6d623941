"""The labels a task carries: only labels of the task's own project.

- A task's labels are set as a whole (`label_ids`); any id that is not a label of the
  task's project (another project's, a deleted one, any on a personal task) is
  INVALID_ARGUMENT LABEL_NOT_IN_PROJECT, checked in the writing transaction.
- Moving a task to another project drops its labels (they belong to the old project),
  unless the same change sets labels of the new project; the drop is recorded like any
  label change.
- A change of the set is a change of the task (its version increases) and one activity
  entry (`labels_changed`, old and new ids ascending, comma-separated).
- Deleting a label takes it off its tasks (ON DELETE CASCADE) without an activity entry
  or a new version: the label is gone, not the tasks changed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Label, String, cast, delete, insert, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from common.db import RESULT_UNREAD
from common.errors import InvalidArgument
from task_svc import activity
from task_svc.models import Label as LabelRow
from task_svc.models import TaskLabel


def carried_column(task_id: ColumnElement[int]) -> Label:
    """A column `label_ids` of the row whose id is `task_id`: its label ids as text
    ("3,7"; NULL: none), so a read brings a task's labels in its own statement, one index
    probe of task_labels' primary key per row. Read it with `parse`."""
    ids = CommaJoined(cast(TaskLabel.label_id, String))
    return select(ids).where(TaskLabel.task_id == task_id).scalar_subquery().label("label_ids")


class CommaJoined(FunctionElement):
    """Text values joined by commas: string_agg on PostgreSQL, group_concat on SQLite.
    The separator is SQL text, not a parameter (SQLAlchemy's aggregate_strings makes it a
    render-time one, which EXPLAIN in bench/task_list_plans.py cannot compile)."""

    type = String()
    inherit_cache = True


@compiles(CommaJoined)
def _group_concat(element: CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(CommaJoined, "postgresql")
def _string_agg(element: CommaJoined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


def parse(text: str | None) -> list[int]:
    """The label ids of a `carried_column` value, ascending."""
    return sorted(int(part) for part in text.split(",")) if text else []


def carried(session: Session | Connection, task_ids: Iterable[int]) -> dict[int, list[int]]:
    """The label ids of each of `task_ids` that carries any, ascending; one query."""
    ids = list(task_ids)
    labels: dict[int, list[int]] = {}
    if not ids:
        return labels
    rows = session.execute(
        select(TaskLabel.task_id, TaskLabel.label_id)
        .where(TaskLabel.task_id.in_(ids)).order_by(TaskLabel.task_id, TaskLabel.label_id)
    )
    for task_id, label_id in rows:
        labels.setdefault(task_id, []).append(label_id)
    return labels


def check_in_project(session: Session, project_id: int | None, label_ids: Collection[int]) -> None:
    """INVALID_ARGUMENT LABEL_NOT_IN_PROJECT unless every id is a label of `project_id`
    (None: a personal task, which carries none)."""
    if not label_ids:
        return
    found = set()
    if project_id is not None:
        found = set(session.scalars(
            select(LabelRow.id).where(LabelRow.project_id == project_id, LabelRow.id.in_(list(label_ids)))
        ))
    strangers = sorted(set(label_ids) - found)
    if strangers:
        where = f"project {project_id}" if project_id is not None else "a project (this is a personal task)"
        raise InvalidArgument(
            "LABEL_NOT_IN_PROJECT", "A task carries only labels of its own project.",
            fields={"label_ids": f"Not labels of {where}: {', '.join(map(str, strangers))}."},
        )


def replace(
    session: Session, task_id: int, actor: int, old: Collection[int], new: Collection[int], *,
    record: bool = True,
) -> None:
    """Writes the task's new label set (checked already) and, with `record`, its activity
    entry (a new task's labels are part of its `created` entry)."""
    gone, added = set(old) - set(new), set(new) - set(old)
    if gone:
        session.execute(delete(TaskLabel).where(TaskLabel.task_id == task_id, TaskLabel.label_id.in_(gone)))
    if added:
        rows = [{"task_id": task_id, "label_id": label} for label in sorted(added)]
        session.connection().execute(_ADD, rows)
    if record:
        activity.record(
            session, task_id, actor, activity.Kind.LABELS_CHANGED, field="label_ids",
            old=_as_text(old), new=_as_text(new),
        )


# replace's INSERT, whose result is not read (pipelined: common.db).
_ADD = insert(TaskLabel.__table__).inline().execution_options(**{RESULT_UNREAD: True})


def _as_text(label_ids: Collection[int]) -> str | None:
    return ",".join(map(str, sorted(label_ids))) or None
