"""One page of ListTasks: keyset (cursor) paging over a total order.

The order is the requested column, then id in the same direction, so it is total and
a page ends at an exact (value, id) position. NULL due dates sort last in both
directions. The next page starts strictly after the last row's position, so rows
inserted while a client pages never cause duplicates or gaps among the others.

For a non-staff viewer, visibility (task_svc.permissions) is three branches, each read
in order and cut at the page size, merged and cut again: personal tasks created by me,
personal tasks assigned to me (each from its partial index), and the tasks of my
projects. The last is, on PostgreSQL, a LATERAL join: for each of my memberships the
project's own (project_id, created_at, id) index, cut at the page size; so a page costs
(projects I am in + 2) x page size index entries, not how many tasks exist. (With a
plain OR, PostgreSQL either collects and sorts all of the user's tasks or walks the
whole table's newest-first index filtering out other people's.) SQLite, which has no
LATERAL, reads the projects' tasks with an IN (my projects). Tasks of archived projects
are left out unless the list asks for one project.

The `label` filter (tasks carrying all given labels) is a list of one project: a label
belongs to one project, so the page is read from that project's index (the project of
the first label, an init plan) in its order, each row kept when an EXISTS per label finds
it in task_labels (a probe of an index on (task_id, label_id)), and the walk stops at
the page size. Tasks of other projects and personal tasks are never read, and the tasks
of archived projects are listed, as for `project`.

Each row brings the task's label ids along (task_labels.carried_column, a correlated
subquery on task_labels' primary key, run for the page's rows only), so a page stays
one statement.

Statements are built once per shape of query (ordering, which filters, staff or not,
where the page starts) with bound parameters and reused: building the union costs
milliseconds of Python, far more than PostgreSQL needs to run it. Pages are plain rows,
not ORM objects: nothing on a page is changed, and loading twenty tracked objects costs
more than the query (profiled with py-spy under the edge benchmark).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from common.db import Database
from task_svc.list_query import ListQuery, Ordering
from task_svc.models import Label, Project, ProjectMember, Task, TaskLabel
from task_svc.task_labels import carried_column

# psycopg prepares a statement once it has run five times; PostgreSQL then plans each
# execution anew while it judges a custom plan better, which costs more than running
# the page (0.4 ms against 0.15 ms on 1,000,000 tasks: bench/task_list_plans.py). The
# generic plans of task_svc's statements are the index-ordered ones the custom plans
# pick (the bench prints both), so task_svc's connections always use them. A generic
# plan cannot see the LIMIT's value and costs it as 10% of the rows, which lifted the
# staff page (whose archived-project check is a subplan) over jit_above_cost: 270 ms of
# JIT compilation for a 0.5 ms page. No statement of task_svc is long enough for JIT.
POSTGRES_SETTINGS = {"plan_cache_mode": "force_generic_plan", "jit": "off"}

# The keyset position of a row: [sort value, id], JSON-friendly for the page token.
Position = list[Any]

# Filters that compare a column with a parameter of the same name.
_EQUALS = ("status", "priority", "assigned_to", "created_by")
_LIKE_ESCAPE = "\\"


def fetch_page(
    database: Database, query: ListQuery, after: Position | None, size: int
) -> tuple[Sequence[Row], Position | None]:
    """Up to `size` task rows after `after` (each with the columns of Task by position and
    as attributes), and the position to continue from (None at the end). One statement,
    its rows in one fetch (Database.fetch_all)."""
    statement, params = page_query(query, after, size + 1, database.engine.dialect.name)
    rows = database.fetch_all(statement, params)
    if len(rows) <= size:
        return rows, None
    page = rows[:size]
    return page, position_of(page[-1], query)


def page_query(
    query: ListQuery, after: Position | None, limit: int, dialect: str = "postgresql"
) -> tuple[Select, dict[str, Any]]:
    """The statement for up to `limit` tasks after `after` on `dialect`, and its parameters."""
    names = (*_EQUALS, "project", "q", "due_before", "due_after")
    filters = frozenset(name for name in names if getattr(query, name) is not None)
    params: dict[str, Any] = {name: getattr(query, name) for name in filters} | {
        "viewer": query.viewer.user_id, "limit": limit,
    }
    if "q" in filters:
        params["q"] = f"%{_escape_like(query.q)}%"
    params.update((f"label_{index}", label) for index, label in enumerate(query.labels))
    start = None
    if after is not None:
        value, params["after_id"] = after
        start = "null" if value is None else "value"
        if value is not None:
            params["after_value"] = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    shape = _Shape(
        query.ordering, query.viewer.is_staff, filters, query.unassigned, start, query.personal,
        lateral=dialect == "postgresql", labels=len(query.labels),
    )
    return _statement(shape), params


def position_of(task: Row, query: ListQuery) -> Position:
    value = getattr(task, query.ordering.field)
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return [value, task.id]


@dataclass(frozen=True)
class _Shape:
    ordering: Ordering
    staff: bool
    filters: frozenset[str]
    unassigned: bool
    start: str | None  # None: the first page; "value" / "null": after a row with / without a value
    personal: bool = False  # personal tasks only (project=none)
    lateral: bool = False  # the database has LATERAL joins (PostgreSQL)
    labels: int = 0  # how many labels the tasks must all carry (parameters label_0 ...)


@lru_cache(maxsize=512)
def _statement(shape: _Shape) -> Select:
    conditions = _conditions(shape)
    tasks = Task.__table__
    limit = bindparam("limit")
    if "project" in shape.filters or shape.labels:
        # One project: its index, once the viewer's membership is known (staff: any).
        projects = [bindparam("project")] if "project" in shape.filters else []
        if shape.labels:
            label_project = select(Label.project_id).where(Label.id == bindparam("label_0"))
            projects.append(label_project.scalar_subquery())
            conditions.extend(_carries(bindparam(f"label_{i}")) for i in range(shape.labels))
        conditions.extend(Task.project_id == project for project in projects)
        if shape.personal:
            conditions.append(Task.project_id.is_(None))  # project=none and a label: nothing
        if not shape.staff:
            conditions.append(exists().where(
                ProjectMember.project_id == projects[0], ProjectMember.user_id == bindparam("viewer")
            ))
        statement = select(tasks, carried_column(Task.id)).where(*conditions)
        return _ordered(statement, Task, shape.ordering).limit(limit)
    if shape.personal:
        conditions.append(Task.project_id.is_(None))
    if shape.staff:
        if not shape.personal:
            conditions.append(or_(Task.project_id.is_(None), ~exists().where(
                Project.id == Task.project_id, Project.archived.is_(True)
            )))
        statement = select(tasks, carried_column(Task.id)).where(*conditions)
        return _ordered(statement, Task, shape.ordering).limit(limit)
    viewer = bindparam("viewer")
    # Each branch gives the keys (id, sort value) of its first `limit` tasks; the first
    # `limit` keys of all of them are then joined to their rows once: `limit` row fetches,
    # and a statement short enough for psycopg to cache its parsing (it re-parses one over
    # 4 KiB on every execution, as the union of whole rows was).
    keys = (Task.id, getattr(Task, shape.ordering.field))  # the ordering is never by id alone
    # Personal tasks; the second branch leaves out the viewer's own, which the first has.
    branches = [
        and_(Task.created_by == viewer, Task.project_id.is_(None)),
        and_(Task.assigned_to == viewer, Task.created_by != viewer, Task.project_id.is_(None)),
    ]
    parts = [
        _ordered(select(*keys).where(branch, *conditions), Task, shape.ordering).limit(limit)
        for branch in branches
    ]
    if not shape.personal:
        parts.append(_my_projects_keys(shape, conditions))
    if shape.lateral:  # PostgreSQL: each branch a parenthesized SELECT keeps its ORDER BY and LIMIT
        merged = union_all(*parts).subquery("page_keys")
    else:  # SQLite accepts them only as subqueries
        merged = union_all(*(select(part.subquery()) for part in parts)).subquery("page_keys")
    first = _ordered(select(merged.c.id), merged.c, shape.ordering).limit(limit).subquery("first_keys")
    statement = select(tasks, carried_column(Task.id)).join(first, Task.id == first.c.id)
    return _ordered(statement, Task, shape.ordering)


def _carries(label: ColumnElement[int]) -> ColumnElement[bool]:
    """The task carries `label`: one index probe of task_labels (primary key or its
    (label_id, task_id) index, both hold the pair) per row read.
    OFFSET 0 keeps PostgreSQL from turning the EXISTS into a join (it pulls up no
    subquery with an OFFSET), which in a generic plan it costs as a label's share of all
    tasks (a few) and so reads every task of the label, then sorts them: 148 ms for a
    label on 33,667 tasks (bench/task_list_plans.py). Kept a filter, it is costed as half
    the rows, so the page walks the project's index in order and stops at the page size
    (with 1 to 10 labels, the most a query takes). The 0 is SQL text, not a parameter, so
    the statement says what it is for; SQLite reads it as LIMIT -1 OFFSET 0, no limit."""
    carrying = select(TaskLabel.task_id).where(TaskLabel.task_id == Task.id, TaskLabel.label_id == label)
    return carrying.offset(literal_column("0")).exists()


def _my_projects_keys(shape: _Shape, conditions: list[ColumnElement[bool]]) -> Select:
    """The keys (id, sort value) of the first `limit` tasks of the viewer's projects that
    are not archived."""
    members, projects = ProjectMember.__table__, Project.__table__
    keys = (Task.id, getattr(Task, shape.ordering.field))
    limit = bindparam("limit")
    if not shape.lateral:
        mine = select(members.c.project_id).join(projects, projects.c.id == members.c.project_id)
        mine = mine.where(members.c.user_id == bindparam("viewer"), projects.c.archived.is_(False))
        statement = select(*keys).where(Task.project_id.in_(mine), *conditions)
        return _ordered(statement, Task, shape.ordering).limit(limit)
    # Per project: the keys of its first `limit` tasks from its own index (a nested loop
    # over my memberships; index-only where no filter needs another column), then the
    # first `limit` of those.
    # The project's archived flag is read inside, by primary key, once per membership:
    # joined outside, PostgreSQL hashes the whole projects table for 20 memberships.
    live = (
        select(projects.c.id)
        .where(projects.c.id == members.c.project_id, projects.c.archived.is_(False))
        .correlate(members)
        .exists()
    )
    in_project = select(*keys).where(Task.project_id == members.c.project_id, live, *conditions)
    per_project = _ordered(in_project, Task, shape.ordering).limit(limit).lateral("project_tasks")
    first = select(*per_project.c).select_from(members.join(per_project, true()))
    first = first.where(members.c.user_id == bindparam("viewer"))
    return _ordered(first, per_project.c, shape.ordering).limit(limit)


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        getattr(Task, name) == bindparam(name) for name in _EQUALS if name in shape.filters
    ]
    if shape.unassigned:
        conditions.append(Task.assigned_to.is_(None))
    if "q" in shape.filters:
        conditions.append(
            or_(Task.title.ilike(bindparam("q"), escape=_LIKE_ESCAPE),
                Task.description.ilike(bindparam("q"), escape=_LIKE_ESCAPE))
        )
    if "due_before" in shape.filters:
        conditions.append(Task.due_date < bindparam("due_before"))
    if "due_after" in shape.filters:
        conditions.append(Task.due_date > bindparam("due_after"))
    if shape.start is not None:
        conditions.append(_after(shape))
    return conditions


def _after(shape: _Shape) -> ColumnElement[bool]:
    """Rows strictly after the position (after_value, after_id) in the shape's order."""
    column = getattr(Task, shape.ordering.field)
    descending = shape.ordering.descending
    after_id = bindparam("after_id", type_=Task.id.type)
    if shape.start == "null":
        # NULL due dates come last in both directions: only NULLs with a further id follow.
        return and_(column.is_(None), (Task.id < after_id) if descending else (Task.id > after_id))
    # A row comparison, which PostgreSQL turns into an index range.
    key = tuple_(column, Task.id)
    start = tuple_(bindparam("after_value", type_=column.type), after_id)
    beyond = (key < start) if descending else (key > start)
    if shape.ordering.field == "due_date":
        return or_(beyond, column.is_(None))  # every NULL follows every dated row
    return beyond


def _ordered(statement: Select, columns: Any, ordering: Ordering) -> Select:
    """`statement` in `ordering`; `columns` is Task or a subquery's `.c`."""
    column = getattr(columns, ordering.field)
    direction = "desc" if ordering.descending else "asc"
    keys = [getattr(column, direction)(), getattr(columns.id, direction)()]
    if ordering.field == "due_date":
        keys[0] = keys[0].nulls_last()
    return statement.order_by(*keys)


def _escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern: its % and _ match only themselves."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return text
