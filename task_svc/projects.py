"""The project operations: each one a transaction that applies the role rules
(task_svc.memberships) to the caller's membership read in that same transaction, so a
membership change takes effect on the next call.

- Any verified user may create a project and is its first owner.
- Members (any role) see the project; owners rename, archive, unarchive and delete it;
  staff may do all of that in every project. A project the caller may not see is
  NOT_FOUND, like one that does not exist.
- A project holding tasks is not deleted (FAILED_PRECONDITION PROJECT_NOT_EMPTY); the
  tasks' foreign key (RESTRICT) holds that against a task created meanwhile.
- Changes carry the project's version (ETag); If-Match is checked against the version
  read in the writing transaction, whose UPDATE requires it (compare-and-set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from common.contract_rules import string_rules
from common.db import RESULT_UNREAD, Database, utcnow
from common.errors import Aborted, FailedPrecondition, invalid
from common.paging import PageTokens
from common.preconditions import NONE, Preconditions
from common.validation import text_problem
from task_svc.memberships import Action, Role, check_allowed, project_not_found
from task_svc.models import Project, ProjectMember, Task
from task_svc.permissions import Viewer, check_visible
from taskmgr.task.v1 import project_service_pb2 as pb

NAME_MAX = string_rules(pb.Project.DESCRIPTOR, "name").max_len
DESCRIPTION_MAX = string_rules(pb.Project.DESCRIPTOR, "description").max_len
UPDATABLE = ("name", "description")
# Output-only fields a client may echo back in an update (AIP-203: ignored).
OUTPUT_ONLY = ("id", "archived", "created_by", "created_at", "updated_at", "version", "my_role")
CONFLICT_ATTEMPTS = 3


@dataclass(frozen=True)
class ProjectView:
    """A project and the caller's role in it (None: staff who are not a member)."""

    project: Project
    role: Role | None


def role_of(session: Session, project_id: int, user_id: int, *, lock: bool = False) -> Role | None:
    """`user_id`'s role in the project, or None. `lock`: the membership row is held
    (FOR SHARE on PostgreSQL) until the transaction ends, so it cannot be removed
    meanwhile (an assignee checked as a member stays one until the assignment commits)."""
    query = select(ProjectMember.role).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
    )
    if lock:
        query = query.with_for_update(read=True)
    role = session.scalar(query)
    return Role(role) if role is not None else None


def visible_task(session: Session, viewer: Viewer, task_id: int) -> tuple[Task, Role | None]:
    """The task if `viewer` may see it (else NOT_FOUND, task_svc.permissions) and their role
    in its project (None: not a member, or a personal task), read in `session`."""
    task = session.get(Task, task_id) if task_id > 0 else None
    role = None
    if task is not None and task.project_id is not None:
        role = role_of(session, task.project_id, viewer.user_id)
    return check_visible(viewer, task, task_id, role), role


# A project and the viewer's role in it (NULL: not a member): one statement, one round trip.
_PROJECT_AND_ROLE = (
    select(Project, ProjectMember.role)
    .outerjoin(
        ProjectMember,
        and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == bindparam("viewer")),
    )
    .where(Project.id == bindparam("id"))
)


# The same, the project's row locked until the transaction ends (FOR NO KEY UPDATE, as
# its UPDATE would: a task or member added to it, whose foreign key check takes FOR KEY
# SHARE, is not held up).
_PROJECT_AND_ROLE_LOCKED = _PROJECT_AND_ROLE.with_for_update(of=Project, key_share=True)


def load(
    session: Session, viewer: Viewer, project_id: int, action: Action, *, lock: bool = False
) -> ProjectView:
    """The project if `viewer` may do `action` in it: NOT_FOUND when they may not see it
    (or it does not exist), PERMISSION_DENIED when their role does not allow `action`.
    `lock`: the project's row is held until the transaction ends."""
    row = None
    if project_id > 0:
        statement = _PROJECT_AND_ROLE_LOCKED if lock else _PROJECT_AND_ROLE
        row = session.execute(statement, {"id": project_id, "viewer": viewer.user_id}).first()
    if row is None:
        raise project_not_found(project_id)
    project, role = row
    role = Role(role) if role is not None else None
    check_allowed(project_id, role, action, is_staff=viewer.is_staff)
    return ProjectView(project, role)


def check_values(values: Mapping[str, Any]) -> None:
    problems: dict[str, str] = {}
    for name, value in values.items():
        if name == "name":
            problem = "This field may not be blank." if value and not value.strip() else (
                text_problem(value, max_length=NAME_MAX, min_length=1)
            )
        else:
            problem = text_problem(value, max_length=DESCRIPTION_MAX, multiline=True)
        if problem:
            problems[name] = problem
    if problems:
        raise invalid(problems)


def mask_fields(paths: list[str]) -> tuple[str, ...]:
    """The fields an update_mask names (`*`: every updatable one); unknown ones are
    INVALID_ARGUMENT."""
    if "*" in paths:
        return UPDATABLE
    unknown = [path for path in paths if path not in UPDATABLE and path not in OUTPUT_ONLY]
    if unknown:
        raise invalid({"update_mask": f"Unknown fields: {', '.join(unknown)}. Updatable: name, description."})
    return tuple(dict.fromkeys(path for path in paths if path in UPDATABLE))


class Projects:
    def __init__(self, database: Database, page_tokens: PageTokens) -> None:
        self._db = database
        self._page_tokens = page_tokens

    def create(self, viewer: Viewer, name: str, description: str) -> ProjectView:
        check_values({"name": name, "description": description})
        with self._db.transaction() as session:
            now = utcnow()
            project = Project(
                name=name, description=description, archived=False, created_by=viewer.user_id,
                created_at=now, updated_at=now,
            )
            session.add(project)
            session.flush()
            owner = ProjectMember(project_id=project.id, user_id=viewer.user_id, role=Role.OWNER.value)
            owner.created_at = now
            session.add(owner)
        return ProjectView(project, Role.OWNER)

    def get(self, viewer: Viewer, project_id: int) -> ProjectView:
        with self._db.read() as session:
            return load(session, viewer, project_id, Action.READ)

    def list(
        self, viewer: Viewer, include_archived: bool, page_token: str, size: int
    ) -> tuple[list[ProjectView], str]:
        """The caller's projects (staff: all) in id order, keyset-paged."""
        fingerprint = {"viewer": viewer.user_id, "staff": viewer.is_staff, "archived": include_archived}
        after = self._page_tokens.decode(page_token, fingerprint) or 0
        mine = (ProjectMember.project_id == Project.id) & (ProjectMember.user_id == viewer.user_id)
        query = select(Project, ProjectMember.role)
        query = query.outerjoin(ProjectMember, mine) if viewer.is_staff else query.join(ProjectMember, mine)
        query = query.where(Project.id > after).order_by(Project.id).limit(size + 1)
        if not include_archived:
            query = query.where(Project.archived.is_(False))
        with self._db.read() as session:
            rows = session.execute(query).all()
        page = [ProjectView(project, Role(role) if role else None) for project, role in rows[:size]]
        token = self._page_tokens.encode(page[-1].project.id, fingerprint) if len(rows) > size else ""
        return page, token

    def update(
        self, viewer: Viewer, project_id: int, values: Mapping[str, Any], preconditions: Preconditions = NONE
    ) -> ProjectView:
        """Changes the fields in `values` (owners) if the version meets `preconditions`."""
        check_values(values)
        return self._change(viewer, project_id, dict(values), preconditions)

    def set_archived(
        self, viewer: Viewer, project_id: int, archived: bool, preconditions: Preconditions = NONE
    ) -> ProjectView:
        return self._change(viewer, project_id, {"archived": archived}, preconditions)

    def delete(self, viewer: Viewer, project_id: int, preconditions: Preconditions = NONE) -> None:
        """Deletes an empty project (owners); its memberships go with it."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    view = load(session, viewer, project_id, Action.MANAGE)
                    preconditions.check(view.project.version)
                    if session.scalar(select(exists().where(Task.project_id == project_id))):
                        raise _not_empty(project_id)
                    session.delete(view.project)
                    session.flush()
                return
            except StaleDataError:
                continue
            except IntegrityError as exc:  # a task was added meanwhile (foreign key)
                raise _not_empty(project_id) from exc
        raise _conflict()

    def _change(
        self, viewer: Viewer, project_id: int, values: dict[str, Any], preconditions: Preconditions
    ) -> ProjectView:
        """On PostgreSQL two round trips: the project locked with the caller's role (and
        BEGIN), its UPDATE with the COMMIT (pipelined: common.db)."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                with self._db.transaction(pipelined=True) as session:
                    view = load(session, viewer, project_id, Action.MANAGE, lock=True)
                    project = view.project
                    preconditions.check(project.version)
                    changed = {
                        name: value for name, value in values.items() if getattr(project, name) != value
                    }
                    if changed:
                        _write(session, project, changed)
                    return view
            except StaleDataError:
                continue
        raise _conflict()


# A locked project's new version: its result is not read (it goes with the COMMIT). The
# version read is still required ("WHERE version = <read>"), though the lock holds it.
_WRITE = (
    update(Project.__table__)
    .where(Project.id == bindparam("project_id"), Project.version == bindparam("read_version"))
    .execution_options(**{RESULT_UNREAD: True})
)


def _write(session: Session, project: Project, changed: Mapping[str, Any]) -> None:
    """Writes `changed` to the locked `project` as a new version and sets them on it, out
    of the session (whose flush would be an UPDATE of its own, answered at once)."""
    values = {**changed, "updated_at": utcnow(), "version": project.version + 1}
    keys = {"project_id": project.id, "read_version": project.version}
    session.connection().execute(_WRITE, {**keys, **values})
    session.expunge(project)
    for name, value in values.items():
        setattr(project, name, value)


def _not_empty(project_id: int) -> FailedPrecondition:
    return FailedPrecondition(
        "PROJECT_NOT_EMPTY", f"Project {project_id} holds tasks: move or delete them before deleting it."
    )


def _conflict() -> Aborted:
    return Aborted("CONCURRENT_UPDATE", "The project is being changed by someone else; try again.")
