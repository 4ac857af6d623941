"""One page of ListTasks: keyset (cursor) paging over a total order.

The order is the requested column, then id in the same direction, so it is total and
a page ends at an exact (value, id) position. NULL due dates sort last in both
directions. The next page starts strictly after the last row's position, so rows
inserted while a client pages never cause duplicates or gaps among the others.

For a non-staff viewer, visibility ("created by me OR assigned to me") is two
branches, each read from its own index in order and cut at the page size, merged and
cut again: the cost of a page depends on the page size, not on how many tasks exist.
(A plain OR would make PostgreSQL collect and sort every task of the user.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal, or_, select, true, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from task_svc.list_query import ListQuery
from task_svc.models import Task

# The keyset position of a row: [sort value, id], JSON-friendly for the page token.
Position = list[Any]


def fetch_page(
    session: Session, query: ListQuery, after: Position | None, size: int
) -> tuple[list[Task], Position | None]:
    """Up to `size` tasks after `after`, and the position to continue from (None at the end)."""
    branches = _visibility_branches(query)
    if len(branches) == 1:
        statement = _ordered(select(Task).where(branches[0], *_conditions(Task, query, after)), Task, query)
        rows = list(session.scalars(statement.limit(size + 1)))
    else:
        parts = [
            _ordered(
                select(Task).where(branch, *_conditions(Task, query, after)), Task, query
            ).limit(size + 1).subquery()
            for branch in branches
        ]
        merged = aliased(Task, union_all(*(select(part) for part in parts)).subquery())
        rows = list(session.scalars(_ordered(select(merged), merged, query).limit(size + 1)))
    if len(rows) <= size:
        return rows, None
    page = rows[:size]
    return page, position_of(page[-1], query)


def position_of(task: Task, query: ListQuery) -> Position:
    value = getattr(task, query.ordering.field)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return [value, task.id]


def _visibility_branches(query: ListQuery) -> list[ColumnElement[bool]]:
    viewer = query.viewer
    if viewer.is_staff:
        return [true()]
    # The second branch leaves out the viewer's own tasks, which the first one has.
    return [
        Task.created_by == viewer.user_id,
        and_(Task.assigned_to == viewer.user_id, Task.created_by != viewer.user_id),
    ]


def _conditions(entity: Any, query: ListQuery, after: Position | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.status is not None:
        conditions.append(entity.status == query.status)
    if query.priority is not None:
        conditions.append(entity.priority == query.priority)
    if query.unassigned:
        conditions.append(entity.assigned_to.is_(None))
    elif query.assigned_to is not None:
        conditions.append(entity.assigned_to == query.assigned_to)
    if query.created_by is not None:
        conditions.append(entity.created_by == query.created_by)
    if query.q:
        # autoescape: % and _ in the text are literal characters, not wildcards.
        conditions.append(
            or_(entity.title.icontains(query.q, autoescape=True),
                entity.description.icontains(query.q, autoescape=True))
        )
    if query.due_before is not None:
        conditions.append(entity.due_date < query.due_before)
    if query.due_after is not None:
        conditions.append(entity.due_date > query.due_after)
    if after is not None:
        conditions.append(_after(entity, query, after))
    return conditions


def _after(entity: Any, query: ListQuery, position: Position) -> ColumnElement[bool]:
    """Rows strictly after `position` in the query's order."""
    raw_value, last_id = position
    field, descending = query.ordering.field, query.ordering.descending
    column, id_column = getattr(entity, field), entity.id
    value = dt.datetime.fromisoformat(raw_value) if isinstance(raw_value, str) else raw_value
    key = tuple_(column, id_column)
    if value is None:
        # Only a NULL due date has no value: NULLs come last in both directions, so
        # only NULLs with a further id follow it.
        return and_(column.is_(None), (id_column < last_id) if descending else (id_column > last_id))
    # A row comparison, which PostgreSQL turns into an index range.
    start = tuple_(literal(value, column.type), literal(last_id, id_column.type))
    beyond = (key < start) if descending else (key > start)
    if field == "due_date":
        return or_(beyond, column.is_(None))  # every NULL follows every dated row
    return beyond


def _ordered(statement: Select, entity: Any, query: ListQuery) -> Select:
    column = getattr(entity, query.ordering.field)
    direction = "desc" if query.ordering.descending else "asc"
    keys = [getattr(column, direction)(), getattr(entity.id, direction)()]
    if query.ordering.field == "due_date":
        keys[0] = keys[0].nulls_last()
    return statement.order_by(*keys)

