"""The task operations: each one a transaction that applies the rules and records
its events in the outbox alongside the change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from common.db import Database, fetch_in_transaction, utcnow
from common.errors import Aborted, FailedPrecondition, InvalidArgument, invalid
from common.paging import PageTokens, query_key
from common.preconditions import NONE, Preconditions
from task_svc import events, idempotency, locked_task, task_labels
from task_svc.assignees import UserDirectory
from task_svc.fields import DEFAULT_PRIORITY, DEFAULT_STATUS, PRIORITY_RANKS, check_values
from task_svc.list_query import ListQuery
from task_svc.listing import fetch_page
from task_svc.memberships import Action, Role
from task_svc.models import ProjectMember, Task
from task_svc.permissions import (
    Viewer,
    check_may_assign,
    check_may_change,
    check_may_delete,
    check_visible,
)
from task_svc.projects import load, role_of
from task_svc.watchers import Candidate

# A task and the viewer's role in its project (NULL: a personal task, or not a member).
_TASK_AND_ROLE = (
    select(Task.__table__, task_labels.carried_column(Task.id), ProjectMember.role.label("viewer_role"))
    .outerjoin(
        ProjectMember,
        and_(ProjectMember.project_id == Task.project_id, ProjectMember.user_id == bindparam("viewer")),
    )
    .where(Task.id == bindparam("id"))
)

# A new task's row; its id is the one result a create reads before its commit (the
# rows of its events go with the COMMIT: Database.transaction(pipelined=True)).
_INSERT_TASK = insert(Task.__table__).returning(Task.id)

# The attribute (not a column) of a Task just created or changed holding its label ids:
# its reply needs no read of them (Tasks.labels_of).
_CREATED_LABELS = "created_label_ids"

# A change that lost a race is tried again: its preconditions are checked again against
# the version that won, so a stale If-Match still fails and an unrelated race does not.
CONFLICT_ATTEMPTS = 3


@dataclass(frozen=True)
class NewTask:
    title: str
    description: str = ""
    status: str = DEFAULT_STATUS
    priority: str = DEFAULT_PRIORITY
    due_date: Any = None  # an aware datetime or None
    assigned_to: int | None = None
    project_id: int | None = None  # None: a personal task
    label_ids: tuple[int, ...] = ()  # labels of the project (task_svc.task_labels)


class Tasks:
    def __init__(self, database: Database, directory: UserDirectory, page_tokens: PageTokens) -> None:
        self._db = database
        self._directory = directory
        self._page_tokens = page_tokens

    def create(self, viewer: Viewer, new: NewTask, request_id: str = "") -> Task:
        """The new task (not in any session). On PostgreSQL a personal task is two round
        trips with its event, watcher and activity rows: its INSERT (with BEGIN), then the
        other rows with the COMMIT; a project's adds its checks' reads, a request_id the
        replay's."""
        fields = asdict(new)
        check_values(fields)
        digest = ""
        if request_id:
            idempotency.check_request_id(request_id)
            digest = idempotency.request_hash(fields)
            replayed = self._replay(viewer, request_id, digest)
            if replayed is not None:
                return replayed
        if new.assigned_to is not None and new.project_id is None:
            self._check_assignee(new.assigned_to, "assigned_to")  # a member is checked below
        try:
            with self._db.transaction(pipelined=True) as session:
                assignee_role = None
                if new.project_id is not None:
                    assignee_role = _check_project_target(session, viewer, new.project_id, new.assigned_to)
                task_labels.check_in_project(session, new.project_id, new.label_ids)
                task = _insert_task(session, viewer, new)
                setattr(task, _CREATED_LABELS, sorted(set(new.label_ids)))  # for labels_of
                if new.label_ids:
                    task_labels.replace(session, task.id, viewer.user_id, (), new.label_ids, record=False)
                if request_id:
                    idempotency.remember(session, viewer.user_id, request_id, digest, task)
                events.task_created(
                    session, task, viewer.user_id, actor_is_staff=viewer.is_staff, assignee_role=assignee_role
                )
            return task
        except IntegrityError:
            # A concurrent create with the same key committed first: answer its task.
            replayed = self._replay(viewer, request_id, digest) if request_id else None
            if replayed is None:
                raise
            return replayed

    def get(self, viewer: Viewer, task_id: int) -> Row:
        """The task (a row with Task's columns) if `viewer` may see it, else NOT_FOUND.
        The hot read (GET /api/tasks/{id}/): one statement, the viewer's role in the
        task's project joined in, as plain rows (Database.fetch_all: an ORM session and its identity
        map cost more CPU than PostgreSQL spends on the select)."""
        row = None
        if task_id > 0:
            rows = self._db.fetch_all(_TASK_AND_ROLE, {"id": task_id, "viewer": viewer.user_id})
            row = rows[0] if rows else None
        role = Role(row.viewer_role) if row is not None and row.viewer_role is not None else None
        return check_visible(viewer, row, task_id, role)

    def list(
        self, query: ListQuery, page_token: str, size: int
    ) -> tuple[list[Row], str]:
        """A page of task rows (with `label_ids`: task_labels.parse) and the next page's
        token: one statement."""
        fingerprint = query_key(query.fingerprint())  # once, for the decode and the encode
        after = self._page_tokens.decode(page_token, fingerprint)
        page, position = fetch_page(self._db, query, after, size)  # rows, no ORM session
        next_token = self._page_tokens.encode(position, fingerprint) if position else ""
        return page, next_token

    def labels_of(self, task: Task) -> list[int]:
        """The label ids a task just written carries, ascending (a personal task: none,
        and a task just created or changed: those it was written with, no query; a read
        brings them in its row)."""
        if task.project_id is None:
            return []
        created = getattr(task, _CREATED_LABELS, None)
        if created is not None:
            return list(created)
        with self._db.read_connection() as connection:
            return task_labels.carried(connection, [task.id]).get(task.id, [])

    def update(
        self, viewer: Viewer, task_id: int, values: Mapping[str, Any], preconditions: Preconditions = NONE
    ) -> Task:
        """Changes the fields in `values` (an update mask's fields and their new values;
        `label_ids` a collection of label ids, task_svc.task_labels), if the task's
        version meets `preconditions` when it is written. On PostgreSQL a change of its
        fields is two round trips with its events, watcher and activity rows (the task
        locked with BEGIN, the rest with the COMMIT); a project task's new assignee,
        a move and new labels add their checks' reads."""
        check_values(values)
        return self._change(
            viewer, task_id, values, preconditions, assignee_field="assigned_to",
            authorize=lambda task, role, changed: check_may_change(viewer, task, changed, role),
        )

    def assign(
        self, viewer: Viewer, task_id: int, user_id: int | None, preconditions: Preconditions = NONE
    ) -> Task:
        """Assigns the task to `user_id`, or unassigns it when None, if the task's version
        meets `preconditions` when it is written."""
        if user_id is not None and user_id <= 0:
            raise invalid({"user_id": "A user id, or null to unassign."})
        return self._change(
            viewer, task_id, {"assigned_to": user_id}, preconditions, assignee_field="user_id",
            authorize=lambda task, role, _changed: check_may_assign(viewer, task, role),
        )

    def delete(self, viewer: Viewer, task_id: int, preconditions: Preconditions = NONE) -> None:
        """Deletes the task if its version meets `preconditions` when it is deleted. On
        PostgreSQL two round trips with its event: the task locked (and its watchers
        read) with BEGIN, the DELETE with the COMMIT."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                with self._db.transaction(pipelined=True) as session:
                    locked = locked_task.read(session, viewer, task_id, lock=locked_task.Lock.DELETE)
                    task = locked.task
                    check_may_delete(viewer, task, locked.role)
                    preconditions.check(task.version)
                    events.task_deleted(session, task, viewer.user_id, watching=locked.watching())
                    locked_task.delete_task(session, task)
                return
            except StaleDataError:
                continue
        raise _conflict()

    def _change(
        self,
        viewer: Viewer,
        task_id: int,
        values: Mapping[str, Any],
        preconditions: Preconditions,
        *,
        assignee_field: str,
        authorize: Callable[[Task, Role | None, set[str]], None],
    ) -> Task:
        checked_assignee = None
        # One pass more than the attempts: a new assignee is checked between two passes.
        for _ in range(CONFLICT_ATTEMPTS + 1):
            try:
                with self._db.transaction(pipelined=True) as session:
                    locked = locked_task.read(session, viewer, task_id)
                    task, role = locked.task, locked.role
                    changed = {
                        name: value
                        for name, value in values.items()
                        if name != "label_ids" and _stored(name, value) != getattr(task, name)
                    }
                    labels = _label_change(locked.label_ids, values, changed)
                    authorize(task, role, set(changed) | ({"label_ids"} if labels else set()))
                    # Compare-and-set: the version checked here is the one the UPDATE
                    # below requires ("WHERE version = <read>"), in one transaction.
                    preconditions.check(task.version)
                    assignee = changed.get("assigned_to")
                    target = changed.get("project_id", task.project_id)
                    assignee_role = None
                    if target is not None and ({"project_id", "assigned_to"} & set(changed)):
                        # A project task's assignee is a member (checked here, in the
                        # transaction), and members were verified when they joined.
                        assignee_role = _check_project_target(
                            session, viewer, target, changed.get("assigned_to", task.assigned_to),
                            moved="project_id" in changed, field=assignee_field,
                        )
                        assignee = None
                    if assignee is None or assignee == checked_assignee:
                        if labels:
                            task_labels.check_in_project(session, target, labels[1])
                        if changed:
                            _apply(session, locked, changed, viewer.user_id, assignee_role)
                        elif labels:
                            # A new version, as any change.
                            locked_task.write(session, task, {"updated_at": utcnow()})
                        if labels:
                            task_labels.replace(session, task.id, viewer.user_id, *labels)
                        carried = labels[1] if labels else locked.label_ids
                        setattr(task, _CREATED_LABELS, [] if task.project_id is None else carried)
                        return task
            except StaleDataError:
                continue  # someone changed the task while we waited for its lock
            # Asking user_svc takes a network round trip: never inside the transaction,
            # which on SQLite holds the database's one write lock (common.db). The next
            # pass checks the task again; its UPDATE checks the version.
            self._check_assignee(assignee, assignee_field)
            checked_assignee = assignee
        raise _conflict()

    def _replay(self, viewer: Viewer, request_id: str, digest: str) -> Task | None:
        with self._db.read() as session:
            return idempotency.replay(session, viewer.user_id, request_id, digest)

    def _check_assignee(self, user_id: int, field: str) -> None:
        problem = self._directory.check_assignable(user_id)
        if problem:
            raise InvalidArgument("ASSIGNEE_INVALID", "The assignee is not valid.", fields={field: problem})


def _insert_task(session: Session, viewer: Viewer, new: NewTask) -> Task:
    """Writes the new task's row (Core: an ORM unit of work costs more CPU than all the
    rest of the create) and answers it as a Task that is in no session."""
    now = utcnow()
    values = {
        "title": new.title, "description": new.description, "status": new.status,
        "priority": PRIORITY_RANKS[new.priority], "due_date": new.due_date, "created_by": viewer.user_id,
        "assigned_to": new.assigned_to, "project_id": new.project_id, "created_at": now, "updated_at": now,
        "version": 1,  # the mapper's first version (version_id_col), as an ORM insert sets it
    }
    task_id = fetch_in_transaction(session, _INSERT_TASK, values)[0].id
    return Task(id=task_id, due_soon_sent_for=None, overdue_sent_for=None, **values)


def _check_project_target(
    session: Session, viewer: Viewer, project_id: int, assignee: int | None, *, moved: bool = True,
    field: str = "assigned_to",
) -> Role | None:
    """A task may be put into (created in, moved to) `project_id` by who may edit its tasks
    (NOT_FOUND / PERMISSION_DENIED), unless it is archived; its assignee must be a member.
    The assignee's membership is held until the transaction ends (projects.role_of).
    Answers the assignee's role (None: no assignee)."""
    if moved:
        view = load(session, viewer, project_id, Action.EDIT_TASKS)
        if view.project.archived:
            raise FailedPrecondition(
                "PROJECT_ARCHIVED", f"Project {project_id} is archived: unarchive it to add tasks."
            )
    if assignee is None:
        return None
    role = role_of(session, project_id, assignee, lock=True)
    if role is None:
        raise InvalidArgument(
            "ASSIGNEE_NOT_MEMBER", "The assignee must be a member of the task's project.",
            fields={field: f"User {assignee} is not a member of project {project_id}."},
        )
    return role


def _label_change(
    old: list[int], values: Mapping[str, Any], changed: Mapping[str, Any]
) -> tuple[list[int], list[int]] | None:
    """(old, new) label ids when the change alters the task's labels (`old`: those it
    carries), else None: the set given, or none when the task moves to another project
    without one."""
    if "label_ids" not in values and "project_id" not in changed:
        return None
    new = sorted(set(values.get("label_ids", ())))
    # Moved with the labels it has: checked against the new project (which refuses them).
    return (old, new) if old != new or (new and "project_id" in changed) else None


def _stored(name: str, value: Any) -> Any:
    return PRIORITY_RANKS[value] if name == "priority" else value


def _apply(
    session: Session, locked: locked_task.LockedTask, changed: Mapping[str, Any], actor: int,
    assignee_role: Role | None,
) -> None:
    """Writes the change and records its events. Whom they tell takes no read: the
    watchers came with the locked task, and a new assignee starts watching here
    (`assignee_role`: theirs in the task's project, as checked); a task moved to another
    project has its watchers' roles there read."""
    task = locked.task
    old = {name: getattr(task, name) for name in changed}
    old_assignee = task.assigned_to
    stored = {name: _stored(name, value) for name, value in changed.items()}
    locked_task.write(session, task, {**stored, "updated_at": utcnow()})
    moved = "project_id" in changed
    if set(changed) - {"assigned_to"}:
        # One email per person per change: the assignees, old and new, have theirs.
        assignees = {old_assignee, task.assigned_to} if "assigned_to" in changed else set()
        events.task_updated(
            session, task, actor, old=old, told_otherwise=assignees - {None},
            watching=None if moved else locked.watching(),
        )
    if "assigned_to" in changed:
        watching = None
        if not moved:
            new = [Candidate(task.assigned_to)] if task.assigned_to is not None else []
            candidates, roles = locked.watching(*new)
            if assignee_role is not None:
                roles[task.assigned_to] = assignee_role
            watching = (candidates, roles)
        events.task_assigned(session, task, actor, previous_assignee=old_assignee, watching=watching)


def _conflict() -> Aborted:
    return Aborted("CONCURRENT_UPDATE", "The task is being changed by someone else; try again.")
